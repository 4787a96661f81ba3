r"""AdaBelief (Zhuang et al., 2020): rule :class:`scale_by_adabelief` and optimizer
:class:`AdaBelief` -- the worked example of a rule written once, in the form
(:mod:`descentlab.optim.form`), from which its eager and fused backends are derived."""

from __future__ import annotations

from .adam import adam_chain
from .form import Form, FormRule, addcmul, lerp, sqrt
from .hyperspec import SCALAR_BETAS, Real, declare
from .records import OptimizerRecord, adam_family
from .torchapi import Named, Params

__all__ = ["AdaBelief", "scale_by_adabelief"]


class scale_by_adabelief(FormRule):
    r"""AdaBelief (Zhuang et al., 2020, Algorithm 2): Adam whose second moment is the
    variance of the gradient around its running mean -- the "belief" in the observed gradient.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        s_t = \beta_2 s_{t-1} + (1-\beta_2) (g_t - m_t)^2 + \epsilon, \quad
        u = \frac{m_t / (1-\beta_1^t)}{\sqrt{s_t / (1-\beta_2^t)} + \epsilon}

    Args:
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon \ge 0`, added to :math:`s_t` and to the denominator (the
            paper's default 1e-16).
    """

    name = "scale_by_adabelief"
    role = "direction + adaptive rate"
    checks = declare(betas=SCALAR_BETAS, eps=Real(0.0, scalar=True))
    nonnegative = ("exp_avg_var",)

    def __init__(self, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-16) -> None:
        super().__init__(betas=tuple(betas), eps=eps)

    def form(self, f: Form, hyper) -> None:
        w1 = f.coef("1mb1", lambda h, t: 1 - h["betas"][0], uses=("betas",))
        b2 = f.coef("b2", lambda h, t: h["betas"][1], uses=("betas",))
        w2 = f.coef("1mb2", lambda h, t: 1 - h["betas"][1], uses=("betas",))
        eps = f.coef("eps", lambda h, t: h["eps"], uses=("eps",))
        bc1 = f.coef("bc1", lambda h, t: 1 - h["betas"][0] ** t, uses=("betas",))
        bc2 = f.coef("bc2s", lambda h, t: (1 - h["betas"][1] ** t) ** 0.5, uses=("betas",))
        m = f.assign("exp_avg", lerp(f.state("exp_avg"), f.g, w1))
        r = f.let(f.g - m)
        s = f.assign("exp_avg_var", addcmul(f.state("exp_avg_var") * b2, r, r, w2) + eps)
        f.out((m / (sqrt(s) / bc2 + eps)) / bc1)


class AdaBelief(Named):
    r"""AdaBelief (Zhuang et al., 2020): chain ``maximize -> add_l2 -> scale_by_adabelief ->
    add_decayed_weights -> scale_by_lr``; ``decoupled_weight_decay`` (default True, the paper's
    AdamW-style decay) chooses between the two penalties, as in :class:`~descentlab.optim.Adam`.

    Args:
        params: parameters or param groups.
        lr: learning rate (>= 0).
        betas: :math:`(\beta_1, \beta_2)`.
        eps: added to the second moment and to the denominator.
        weight_decay: :math:`\lambda \ge 0`.
        decoupled_weight_decay: decay the weights directly (AdamW) rather than add an L2
            gradient.
        maximize: ascend instead.
        fused: backend (None: fused where it can).
        state_dtype: how the moments are stored: None (float32), ``"int8"`` (8-bit
            blockwise) or ``"bfloat16"`` (stochastic rounding); see
            :mod:`descentlab.optim.lowbit`.
    """

    # fmt: off
    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-16, weight_decay: float = 0.0, *,
                 decoupled_weight_decay: bool = True, maximize: bool = False,
                 foreach: bool | None = None, fused: bool | None = None,
                 monitor: bool = False, state_dtype: str | None = None) -> None:
    # fmt: on
        super().__init__(params, adam_chain(scale_by_adabelief()), locals())


#: this module's registered optimizer (see descentlab.optim.records)
# fmt: off
RECORDS: tuple[OptimizerRecord, ...] = (adam_family(
    name="adabelief", display="AdaBelief", color="#DDCC77", year=2020, factory=AdaBelief,
    reference="Zhuang et al., AdaBelief Optimizer: Adapting Stepsizes by the Belief in "
    "Observed Gradients, NeurIPS 2020 (arXiv:2010.07468)",
),)
# fmt: on
