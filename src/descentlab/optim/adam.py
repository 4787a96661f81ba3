r"""Adam (Kingma & Ba, 2015): rule :class:`scale_by_adam` and optimizer :class:`Adam`.

Adam's whole update on the default path is here: the math (:class:`scale_by_adam`'s
docstring), the eager form (``update``, and ``apply_final``, torch's parameter update), the
fused form (``fuse``: the per-element C the fused backend compiles) and the chain
``maximize -> add_l2 -> scale_by_adam -> add_decayed_weights -> scale_by_lr``
(:func:`adam_chain`; the shared transforms are in :mod:`descentlab.optim.transforms`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import (
    Owned,
    Rule,
    add_eps_,
    addcdiv_final,
    as_scalar,
    beta_coef,
    betas_of,
    chain,
    div_each_,
    div_into_,
    ema_sq_,
    fused_lazy_zeros,
    fused_root,
    hp,
    lazy_state,
    lerp_,
    root_denominator,
    sqrt_into,
    step_values,
    zeros,
)
from .hyperspec import BETAS, NONNEG, Flag, declare
from .records import OptimizerRecord, ParityConfig
from .torchapi import Named, Params
from .transforms import add_decayed_weights, add_l2, scale_by_lr
from .transforms import maximize as _maximize

__all__ = ["RECORDS", "Adam", "adam_chain", "fused_moments", "scale_by_adam"]


class scale_by_adam(Rule):
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
    and Optax default to 1e-8, outside the root.
    """

    name = "scale_by_adam"
    role = "direction + adaptive rate"
    local = True
    state_keys = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(
        self,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        amsgrad: bool = False,
        bias_correction: bool = True,
        eps_inside_sqrt: bool = False,
    ) -> None:
        super().__init__(
            betas=tuple(betas),
            eps=eps,
            amsgrad=amsgrad,
            bias_correction=bias_correction,
            eps_inside_sqrt=eps_inside_sqrt,
        )
        self.needs_step = True

    def init(self, params):
        state = {"exp_avg": zeros(params), "exp_avg_sq": zeros(params)}
        if self.defaults["amsgrad"]:
            state["max_exp_avg_sq"] = zeros(params)
        return state

    checks = declare(
        betas=BETAS, eps=NONNEG, amsgrad=Flag(), bias_correction=Flag(), eps_inside_sqrt=Flag()
    )

    def fuse_signature(self, hyper):
        return (
            bool(hyper["amsgrad"]),
            bool(hyper["bias_correction"]),
            bool(hyper["eps_inside_sqrt"]),
        )

    def fuse(self, b, hyper):
        amsgrad, bias_correction, inside = self.fuse_signature(hyper)
        m = b.state("exp_avg", write=True)
        v = b.state("exp_avg_sq", write=True)
        fused_moments(b, m, v, "adam")
        if amsgrad:
            vmax = fused_lazy_zeros(b, "max_exp_avg_sq")
            b.line(f"{vmax} = (dl_isnan({v}) | ({v} > {vmax})) ? {v} : {vmax};")
            v = vmax
        if bias_correction:
            bc1 = b.coef("adam_bc1", lambda h, t, e: 1 - float(h["betas"][0]) ** t, uses=("betas",))
            bc2 = b.coef(
                "adam_bc2s",
                lambda h, t, e: (1 - float(h["betas"][1]) ** t) ** 0.5,
                uses=("betas",),
            )
            ce = b.coef("adam_eps", hp("eps"), uses=("eps",))
            root = f"dl_sqrt({v} + {ce}) / {bc2}" if inside else f"dl_sqrt({v}) / {bc2} + {ce}"
            d = b.let(root)
            b.u = b.let(f"({m} / {d}) / {bc1}")
            b.final_form = (b.u, addcdiv_final("adam", m, d, bias_correction=True))
        else:
            d = fused_root(b, v, "adam_eps", inside)
            b.u = b.let(f"{m} / {d}")
            b.final_form = (b.u, addcdiv_final("adam", m, d))
        return True

    has_final = True

    def apply_final(self, grads, state, params, hyper, lrs):
        denom, m, bc1 = self._denominator(grads, state, hyper)
        if bc1 is None:
            steps = [-lr for lr in lrs]
        else:  # torch: step_size = lr / bias_correction1; p.addcdiv_(m, denom, -step_size)
            steps = [-(lr / c) for lr, c in zip(lrs, bc1, strict=True)]
        torch._foreach_addcdiv_(params, m, denom, steps)

    def update(self, grads, state, params, hyper):
        denom, m, bc1 = self._denominator(grads, state, hyper)
        div_into_(denom, m)
        if bc1 is not None:
            div_each_(denom, bc1)
        return denom, state

    def _denominator(self, grads, state, hyper) -> tuple[Owned, list[Tensor], list | None]:
        """Update the moments; returns (the denominator, m, the bias corrections 1 - b1^t or
        None): the update is m / denominator / (1 - b1^t)."""
        b1, b2 = betas_of(hyper)
        eps = as_scalar(hyper["eps"])
        m, v = state["exp_avg"], state["exp_avg_sq"]
        lerp_(m, grads, 1 - b1)
        ema_sq_(v, grads, b2)
        if hyper["amsgrad"]:
            vmax = lazy_state(state, "max_exp_avg_sq", grads, torch.zeros_like)
            torch._foreach_maximum_(vmax, v)
            v = vmax
        if hyper["bias_correction"]:
            steps = step_values(state, len(grads))
            bc1 = [1 - b1**t for t in steps]
            bc2_sqrt = [(1 - b2**t) ** 0.5 for t in steps]
            if hyper["eps_inside_sqrt"]:
                denom = root_denominator(state, v, eps, inside=True)
                div_each_(denom, bc2_sqrt)
            else:
                denom = sqrt_into(state, v)
                div_each_(denom, bc2_sqrt)
                add_eps_(denom, eps)
            return denom, m, bc1
        return root_denominator(state, v, eps, hyper["eps_inside_sqrt"]), m, None


def fused_moments(b, m: str, v: str, prefix: str) -> None:
    """Adam's moment updates, as lerp_ and ema_sq_ round them."""
    c1 = b.coef(f"{prefix}_1mb1", beta_coef(0, one_minus=True), uses=("betas",))
    c2 = b.coef(f"{prefix}_b2", beta_coef(1), uses=("betas",))
    c3 = b.coef(f"{prefix}_1mb2", beta_coef(1, one_minus=True), uses=("betas",))
    b.line(f"{m} = dl_lerp({m}, {b.u}, {c1});")
    b.line(f"{v} = dl_fma({c3} * {b.u}, {b.u}, {v} * {c2});")


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
    """

    # fmt: off
    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 decoupled_weight_decay: bool = False, bias_correction: bool = True,
                 eps_inside_sqrt: bool = False, monitor: bool = False) -> None:
    # fmt: on
        super().__init__(params, adam_chain(scale_by_adam(amsgrad=amsgrad)), locals())


#: this module's registered optimizers (see descentlab.optim.records)
# fmt: off
RECORDS: tuple[OptimizerRecord, ...] = (
    OptimizerRecord(
        name="adam", display="Adam", color="#000000", family="adam", adaptive=True, year=2015,
        lr_range=(1e-3, 1e-1), demo_lr={"ravine": 0.3, "saddle": 0.05}, factory=Adam,
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
