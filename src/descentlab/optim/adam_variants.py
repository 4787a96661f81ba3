r"""Adam's variants: AdamW (Loshchilov & Hutter, 2019), NAdam (Dozat, 2016), RAdam (Liu et al.,
2020) and Adamax (Kingma & Ba, 2015, section 7.1) -- rules :class:`scale_by_nadam`,
:class:`scale_by_radam`, :class:`scale_by_adamax` and optimizers :class:`AdamW`,
:class:`NAdam`, :class:`RAdam`, :class:`Adamax`. Adam itself is in :mod:`descentlab.optim.adam`.
"""

from __future__ import annotations

from .adam import Adam, adam_chain, adam_moments
from .base import arguments, chain
from .form import Form, FormRule, absolute, branch, lerp, maximum, sqrt
from .hyperspec import SCALAR_BETAS, Real, declare
from .records import OptimizerRecord, ParityConfig, adam_family
from .torchapi import Named, Params
from .transforms import add_l2, scale_by_lr
from .transforms import maximize as _maximize

__all__ = [
    "AdamW",
    "Adamax",
    "NAdam",
    "RAdam",
    "scale_by_adamax",
    "scale_by_nadam",
    "scale_by_radam",
]


class AdamW(Adam):
    """AdamW (torch's ``AdamW``): Adam with decoupled weight decay, default 1e-2."""

    # fmt: off
    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 bias_correction: bool = True, eps_inside_sqrt: bool = False,
                 monitor: bool = False, state_dtype: str | None = None) -> None:
    # fmt: on
        super().__init__(**arguments(locals()), decoupled_weight_decay=True)


def _whole_update(f: Form, u) -> None:
    """``u`` as the rule's output and its whole update, with the final form ``p + u * (-lr)``:
    torch's NAdam and RAdam add ``-lr * u`` after their ``p.mul_(1 - lr * wd)``, in which
    order an infinite parameter stays infinite (the decay added to ``u`` first made
    ``inf - inf``)."""
    f.out(u)
    f.final(f.p + u * f.lr_coef("neglr", lambda h, t, lr: -lr))


def _mu(h, t: float) -> float:
    """NAdam's momentum factor at step ``t``: beta1 (1 - 0.96^(t psi) / 2)."""
    return h["betas"][0] * (1.0 - 0.5 * (0.96 ** (t * h["momentum_decay"])))


class scale_by_nadam(FormRule):
    r"""NAdam (Dozat, 2016): Adam with a Nesterov-style momentum term, as in torch.

    .. math::
        \mu_t = \beta_1\,(1 - \tfrac12\, 0.96^{t\,\psi}), \quad
        \Pi_t = \textstyle\prod_{i \le t} \mu_i, \quad
        u = \frac{1}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}\Big(
            \frac{1-\mu_t}{1-\Pi_t}\, g_t + \frac{\mu_{t+1}}{1 - \Pi_t \mu_{t+1}}\, m_t\Big)

    with :math:`\psi` = ``momentum_decay``; :math:`m, v` as in :class:`scale_by_adam`;
    :math:`\Pi_t` is kept per tensor (``mu_product``, in the default float dtype, as torch).
    """

    name = "scale_by_nadam"
    role = "direction + adaptive rate"
    checks = declare(
        betas=SCALAR_BETAS,
        eps=Real(0.0, scalar=True),
        momentum_decay=Real(0.0, scalar=True, torch="Invalid momentum_decay value: {value}"),
    )
    has_final = True

    def __init__(
        self,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        momentum_decay: float = 4e-3,
    ) -> None:
        super().__init__(betas=tuple(betas), eps=eps, momentum_decay=momentum_decay)

    def form(self, f: Form, hyper) -> None:
        uses = ("betas", "momentum_decay")
        f.product("mu_product", _mu, uses=uses)
        m, v = adam_moments(f)
        bc2 = f.coef("bc2s", lambda h, t: (1 - h["betas"][1] ** t) ** 0.5, uses=("betas",))
        eps = f.coef("eps", lambda h, t: h["eps"], uses=("eps",))
        cg = f.coef("cg", lambda h, t, pr: (1.0 - _mu(h, t)) / (1.0 - pr), uses, "mu_product")
        ca = f.coef(
            "ca", lambda h, t, pr: _mu(h, t + 1) / (1.0 - pr * _mu(h, t + 1)), uses, "mu_product"
        )
        d = f.let(sqrt(v) / bc2 + eps)
        u = f.let((f.g / d) * cg + (m / d) * ca)
        _whole_update(f, u)


class NAdam(Named):
    """NAdam (torch's ``NAdam``): chain ``maximize -> add_l2 -> scale_by_nadam ->
    add_decayed_weights -> scale_by_lr``, one of the two penalties on in each param group
    (``decoupled_weight_decay``, per group as in torch)."""

    # fmt: off
    def __init__(self, params: Params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, monitor: bool = False) -> None:
    # fmt: on
        super().__init__(params, adam_chain(scale_by_nadam()), locals())


def _rho(h, t: float) -> tuple[float, float]:
    r"""RAdam's :math:`(\rho_\infty, \rho_t)`."""
    b2 = h["betas"][1]
    rho_inf = 2 / (1 - b2) - 1
    return rho_inf, rho_inf - 2 * t * (b2**t) / (1 - b2**t)


def _rect(h, t: float) -> float:
    r"""RAdam's :math:`r_t \sqrt{1-\beta_2^t}/(1-\beta_1^t)` (0 where it is off)."""
    rho_inf, rho_t = _rho(h, t)
    if rho_t <= 5:
        return 0.0
    b1, b2 = h["betas"]
    r = (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
    return r**0.5 * (1 - b2**t) ** 0.5 / (1 - b1**t)


class scale_by_radam(FormRule):
    r"""RAdam (Liu et al., 2020): Adam whose adaptive term is switched on only once the
    variance of the adaptive rate is tractable.

    .. math::
        \rho_\infty = \frac{2}{1-\beta_2} - 1, \quad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1-\beta_2^t}, \quad
        u = \frac{m_t}{1-\beta_1^t}\cdot
        \begin{cases} r_t \frac{\sqrt{1-\beta_2^t}}{\sqrt{v_t}+\epsilon} & \rho_t > 5\\
        1 & \text{otherwise}\end{cases},\quad
        r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}
    """

    name = "scale_by_radam"
    role = "direction + adaptive rate"
    checks = declare(betas=SCALAR_BETAS, eps=Real(0.0, scalar=True))
    has_final = True

    def __init__(self, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(betas=tuple(betas), eps=eps)

    def form(self, f: Form, hyper) -> None:
        m, v = adam_moments(f)
        on = f.coef("on", lambda h, t: 1.0 if _rho(h, t)[1] > 5 else 0.0, uses=("betas",))
        rect = f.coef("rect", _rect, uses=("betas",))
        bc1 = f.coef("bc1", lambda h, t: 1 - h["betas"][0] ** t, uses=("betas",))
        eps = f.coef("eps", lambda h, t: h["eps"], uses=("eps",))
        u = f.let(branch(on, (m / (sqrt(v) + eps)) * rect, m / bc1))
        _whole_update(f, u)


class RAdam(Named):
    """RAdam (torch's ``RAdam``): chain ``maximize -> add_l2 -> scale_by_radam ->
    add_decayed_weights -> scale_by_lr``, one of the two penalties on in each param group
    (``decoupled_weight_decay``, per group as in torch)."""

    # fmt: off
    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, decoupled_weight_decay: bool = False,
                 *, foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 monitor: bool = False) -> None:
    # fmt: on
        super().__init__(params, adam_chain(scale_by_radam()), locals())


class scale_by_adamax(FormRule):
    r"""Adamax (Kingma & Ba, 2015, section 7.1): Adam with the infinity norm.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        u_t = \max(\beta_2 u_{t-1},\, |g_t| + \epsilon), \quad
        u = \frac{m_t}{(1-\beta_1^t)\, u_t}

    followed by :class:`scale_by_lr`. eps is added to :math:`|g_t|` inside the max, as
    torch does (the paper has no eps).

    Example:
        >>> import torch
        >>> from descentlab import optim
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> opt = optim.Optimizer([w], optim.chain(optim.scale_by_adamax(), optim.scale_by_lr(0.1)))
        >>> (w ** 2).sum().backward(); _ = opt.step()
        >>> w.detach()
        tensor([ 0.9000, -1.9000])
    """

    name = "scale_by_adamax"
    role = "direction + adaptive rate"
    local = False  # as before the form: not among the trajectory kernels' rules
    checks = declare(betas=SCALAR_BETAS, eps=Real(0.0, scalar=True))

    def __init__(self, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(betas=tuple(betas), eps=eps)

    def form(self, f: Form, hyper) -> None:
        w1 = f.coef("1mb1", lambda h, t: 1 - h["betas"][0], uses=("betas",))
        b2 = f.coef("b2", lambda h, t: h["betas"][1], uses=("betas",))
        eps = f.coef("eps", lambda h, t: h["eps"], uses=("eps",))
        bc1 = f.coef("bc1", lambda h, t: 1 - h["betas"][0] ** t, uses=("betas",))
        m = f.assign("exp_avg", lerp(f.state("exp_avg"), f.g, w1))
        # torch.maximum(n * b2, |g| + eps): a NaN on either side wins
        n = f.assign("exp_inf", maximum(f.state("exp_inf") * b2, absolute(f.g) + eps))
        f.out((m / n) / bc1)


class Adamax(Named):
    r"""Adamax (torch's ``Adamax``): chain ``maximize -> add_l2 -> scale_by_adamax ->
    scale_by_lr``, Adam with the infinity norm,
    :math:`p \leftarrow p - \frac{\eta}{1-\beta_1^t}\,\frac{m_t}{u_t}`,
    :math:`u_t = \max(\beta_2 u_{t-1}, |g_t|+\epsilon)`.

    Example:
        >>> import torch
        >>> from descentlab.optim import Adamax
        >>> opt = Adamax(torch.nn.Linear(4, 1).parameters(), lr=2e-3, fused=False)
    """

    # fmt: off
    def __init__(self, params: Params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False, capturable: bool = False,
                 fused: bool | None = None, monitor: bool = False) -> None:
    # fmt: on
        rule = chain(_maximize(), add_l2(), scale_by_adamax(), scale_by_lr())
        super().__init__(params, rule, locals())


def _coupled_and_decoupled(name: str, torch_name: str, group2: dict) -> tuple:
    """torch-parity configurations of an Adam-like optimizer: plain (the second param group
    with ``group2``), with coupled weight decay, and with decoupled weight decay."""
    return (
        ParityConfig(name, torch_name, dict(lr=1e-2), group2),
        ParityConfig(f"{name}-wd", torch_name, dict(lr=1e-2, weight_decay=1e-2)),
        ParityConfig(
            f"{name}-decoupled",
            torch_name,
            dict(lr=1e-2, weight_decay=1e-1, decoupled_weight_decay=True),
        ),
    )


#: this module's registered optimizers (see descentlab.optim.records)
# fmt: off
RECORDS: tuple[OptimizerRecord, ...] = (
    adam_family(
        name="adamw", display="AdamW", color="#7F7F7F", year=2019, demo_lr={}, factory=AdamW,
        reference="Loshchilov & Hutter, Decoupled Weight Decay Regularization, ICLR 2019",
        parity=(
            ParityConfig("adamw", "AdamW", dict(lr=1e-2), dict(weight_decay=0.1)),
            ParityConfig("adamw-amsgrad", "AdamW", dict(lr=1e-2, amsgrad=True, weight_decay=0.05)),
        ),
    ),
    adam_family(
        name="nadam", display="NAdam", color="#8C564B", year=2016, demo_lr={}, factory=NAdam,
        reference="Dozat, Incorporating Nesterov Momentum into Adam, ICLR 2016 workshop",
        parity=_coupled_and_decoupled("nadam", "NAdam", dict(momentum_decay=8e-3)),
    ),
    adam_family(
        name="radam", display="RAdam", color="#9467BD", year=2020, demo_lr={}, factory=RAdam,
        reference="Liu et al., On the Variance of the Adaptive Learning Rate and Beyond, ICLR 2020",
        parity=_coupled_and_decoupled("radam", "RAdam", dict(betas=(0.9, 0.99))),
    ),
    adam_family(
        name="adamax", display="Adamax", color="#BCBD22", year=2015, demo_lr={}, factory=Adamax,
        reference="Kingma & Ba, Adam: A Method for Stochastic Optimization (sec. 7.1), ICLR 2015",
        parity=(
            ParityConfig("adamax", "Adamax", dict(lr=1e-2), dict(betas=(0.8, 0.99))),
            ParityConfig(
                "adamax-wd-maximize",
                "Adamax",
                dict(lr=5e-3, weight_decay=1e-2, maximize=True, eps=1e-6),
                dict(lr=1e-2),
            ),
        ),
    ),
)
# fmt: on
