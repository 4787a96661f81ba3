r"""Adam (Kingma & Ba, 2015): rule :class:`scale_by_adam` and optimizer :class:`Adam`.

Adam's whole update is here: its math, once, in the form of :mod:`descentlab.optim.form`
(:meth:`scale_by_adam.form`: the moments, the update and torch's parameter update), from
which the eager and fused backends are derived, and the chain
``maximize -> add_l2 -> scale_by_adam -> add_decayed_weights -> scale_by_lr``
(:func:`adam_chain`; the shared transforms are in :mod:`descentlab.optim.transforms`).
"""

from __future__ import annotations

from .base import Rule, arguments, chain
from .form import Form, FormRule, addcdiv, addcmul, lerp, maximum, sqrt
from .hyperspec import BETAS, NONNEG, Flag, declare
from .records import OptimizerRecord, ParityConfig, adam_family
from .torchapi import Named, Params
from .transforms import add_decayed_weights, add_l2, scale_by_lr
from .transforms import maximize as _maximize

__all__ = ["Adam", "adam_chain", "adam_moments", "scale_by_adam"]


class scale_by_adam(FormRule):
    r"""Adam (Kingma & Ba, 2015) = momentum + RMSProp (the optimization-basics lecture), with its
    options.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \quad
        u = \frac{m_t / (1-\beta_1^t)}{\sqrt{v_t / (1-\beta_2^t)} + \epsilon}

    - ``bias_correction=False`` drops both :math:`1-\beta^t` factors (the momentum lecture's first
      version, whose "first step is huge": on step 1 the update is
      :math:`(1-\beta_1)/\sqrt{1-\beta_2} \approx 3.16` times the corrected one for the
      default betas, because the second moment starts near zero);
    - ``eps_inside_sqrt=True`` uses the DL-basics lecture's form
      :math:`u = \sqrt{1-\beta_2^t}/(1-\beta_1^t)\; m_t / \sqrt{v_t + \epsilon}`;
    - ``amsgrad=True`` divides by the running maximum of :math:`v_t` (Reddi et al., 2018).

    Keras writes eps as "epsilon hat" and defaults it to 1e-7 (the DL-basics lecture's tip); torch
    and Optax default to 1e-8, outside the root. The parameter update is torch's
    ``p.addcdiv_(m, d, value=-lr / (1 - beta1^t))`` (its final form).
    """

    name = "scale_by_adam"
    role = "direction + adaptive rate"
    checks = declare(
        betas=BETAS, eps=NONNEG, amsgrad=Flag(), bias_correction=Flag(), eps_inside_sqrt=Flag()
    )
    has_final = True
    nonnegative = ("exp_avg_sq", "max_exp_avg_sq")

    def __init__(
        self,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        amsgrad: bool = False,
        bias_correction: bool = True,
        eps_inside_sqrt: bool = False,
    ) -> None:
        super().__init__(**{**arguments(locals()), "betas": tuple(betas)})

    def form(self, f: Form, hyper) -> None:
        m, v = adam_moments(f)
        if hyper["amsgrad"]:  # torch.maximum(max_exp_avg_sq, v): made on first use
            v = f.assign("max_exp_avg_sq", maximum(f.state("max_exp_avg_sq", lazy=True), v))
        eps = f.coef("eps", lambda h, t: h["eps"], uses=("eps",))
        root = sqrt(v + eps) if hyper["eps_inside_sqrt"] else sqrt(v)
        if hyper["bias_correction"]:
            b1 = lambda h, t: 1 - h["betas"][0] ** t  # noqa: E731
            bc2 = f.coef("bc2s", lambda h, t: (1 - h["betas"][1] ** t) ** 0.5, uses=("betas",))
            d = f.let(root / bc2 if hyper["eps_inside_sqrt"] else root / bc2 + eps)
            f.out((m / d) / f.coef("bc1", b1, uses=("betas",)))
            step = f.lr_coef("step", lambda h, t, lr: -(lr / b1(h, t)), uses=("betas",))
        else:
            d = f.let(root if hyper["eps_inside_sqrt"] else root + eps)
            f.out(m / d)
            step = f.lr_coef("step", lambda h, t, lr: -lr)
        f.final(addcdiv(f.p, m, d, step))  # torch: p.addcdiv_(m, d, value=-step_size)


def adam_moments(f: Form) -> tuple:
    """Adam's moments in ``f``: ``m = lerp(m, g, 1 - b1)``, ``v = v b2 + (1 - b2) g^2``
    (torch's ``lerp_`` and ``mul_(b2).addcmul_(g, g, 1 - b2)``); returns the new (m, v)."""
    w1 = f.coef("1mb1", lambda h, t: 1 - h["betas"][0], uses=("betas",))
    b2 = f.coef("b2", lambda h, t: h["betas"][1], uses=("betas",))
    w2 = f.coef("1mb2", lambda h, t: 1 - h["betas"][1], uses=("betas",))
    m = f.assign("exp_avg", lerp(f.state("exp_avg"), f.g, w1))
    v = f.assign("exp_avg_sq", addcmul(f.state("exp_avg_sq") * b2, f.g, f.g, w2))
    return m, v


def adam_chain(core: Rule) -> Rule:
    """``maximize -> add_l2 -> core -> add_decayed_weights -> scale_by_lr``, where each param
    group's ``decoupled_weight_decay`` switches on exactly one of the two penalties."""
    switch = "decoupled_weight_decay"
    return chain(
        _maximize(),
        add_l2(off_when=switch),
        core,
        add_decayed_weights(0.0, on_when=switch),
        scale_by_lr(),
    )


class Adam(Named):
    r"""Adam (torch's ``Adam``): chain ``maximize -> add_l2 -> scale_by_adam ->
    add_decayed_weights -> scale_by_lr``; each param group's ``decoupled_weight_decay``
    (torch's per-group option) switches on ``add_decayed_weights`` (AdamW) instead of
    ``add_l2``.

    Options beyond torch: ``bias_correction=False`` (the momentum lecture's first Adam) and
    ``eps_inside_sqrt=True`` (the DL-basics lecture). See :class:`~descentlab.optim.scale_by_adam`.
    ``state_dtype`` stores the moments in 8 bits (``"int8"``) or bfloat16 (``"bfloat16"``,
    stochastic rounding): :mod:`descentlab.optim.lowbit`.
    """

    # fmt: off
    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 decoupled_weight_decay: bool = False, bias_correction: bool = True,
                 eps_inside_sqrt: bool = False, monitor: bool = False,
                 state_dtype: str | None = None) -> None:
    # fmt: on
        super().__init__(params, adam_chain(scale_by_adam(amsgrad=amsgrad)), locals())


#: this module's registered optimizers (see descentlab.optim.records)
# fmt: off
RECORDS: tuple[OptimizerRecord, ...] = (
    adam_family(
        name="adam", display="Adam", color="#000000", year=2015,
        demo_lr={"ravine": 0.3, "saddle": 0.05}, factory=Adam,
        reference="Kingma & Ba, Adam: A Method for Stochastic Optimization, ICLR 2015",
        parity=(
            ParityConfig("adam", "Adam", dict(lr=1e-2), dict(betas=(0.8, 0.99))),
            ParityConfig("adam-amsgrad", "Adam", dict(lr=1e-2, amsgrad=True), dict(lr=3e-3)),
            ParityConfig(
                "adam-weight-decay", "Adam", dict(lr=1e-2, weight_decay=1e-2), dict(eps=1e-6)
            ),
            ParityConfig("adam-maximize", "Adam", dict(lr=1e-2, maximize=True)),
            ParityConfig(
                "adam-decoupled",
                "Adam",
                dict(lr=1e-2, weight_decay=1e-1, decoupled_weight_decay=True),
                dict(lr=5e-3),
            ),
        ),
    ),
)
# fmt: on
