r"""The adaptive learning rates: AdaGrad (Duchi et al., 2011), Adadelta (Zeiler, 2012) and
RMSProp (Hinton, 2012) -- rules :class:`scale_by_adagrad`, :class:`scale_by_adadelta`,
:class:`scale_by_rms` and optimizers :class:`Adagrad`, :class:`Adadelta`, :class:`RMSprop`.

Each rule's math is written once, in the form of :mod:`descentlab.optim.form` (its
``form``), with torch's parameter update ``p.addcdiv_(g, d, value=-lr)`` as its final form;
the eager and fused backends are derived from it.
"""

from __future__ import annotations

import torch

from .base import arguments, chain
from .form import Form, FormRule, addcdiv, addcmul, lerp, sqrt
from .hyperspec import NONNEG, Flag, Real, declare
from .records import OptimizerRecord, ParityConfig
from .sgd import trace
from .torchapi import Named, Params
from .transforms import add_l2, scale_by_lr
from .transforms import maximize as _maximize

__all__ = [
    "Adadelta",
    "Adagrad",
    "RMSprop",
    "scale_by_adadelta",
    "scale_by_adagrad",
    "scale_by_rms",
]


def _divided_by_root(f: Form, acc, inside: bool) -> None:
    """The update ``g / d``, ``d = sqrt(acc) + eps`` (``sqrt(acc + eps)`` when ``inside``),
    and torch's parameter update ``p.addcdiv_(g, d, value=-lr)`` as the final form."""
    eps = f.coef("eps", lambda h, t: h["eps"], uses=("eps",))
    d = f.let(sqrt(acc + eps) if inside else sqrt(acc) + eps)
    f.out(f.g / d)
    f.final(addcdiv(f.p, f.g, d, f.lr_coef("neglr", lambda h, t, lr: -lr)))


class scale_by_adagrad(FormRule):
    r"""AdaGrad (Duchi et al., 2011): accumulate squared gradients.

    .. math:: r_t = r_{t-1} + g_t^2, \qquad u = \frac{g_t}{\sqrt{r_t} + \epsilon}
       \quad\text{or}\quad \frac{g_t}{\sqrt{r_t + \epsilon}}\ (\text{eps\_inside\_sqrt})

    :math:`r_0` = ``initial_accumulator_value``. torch and the derivatives and momentum lectures
    put eps outside the root (the momentum lecture's code uses 1e-7); the DL-basics lecture writes
    it inside. Optax's ``scale_by_rss`` adds eps inside as well, with an initial accumulator of 0.1.
    """

    name = "scale_by_adagrad"
    role = "adaptive learning rate"
    checks = declare(initial_accumulator_value=NONNEG, eps=NONNEG, eps_inside_sqrt=Flag())
    has_final = True

    def __init__(
        self,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        eps_inside_sqrt: bool = False,
    ) -> None:
        super().__init__(**arguments(locals()))

    def init(self, params):
        v = self.defaults["initial_accumulator_value"]
        # a complex parameter is a pair of reals: both halves start at v (as torch)
        return {"sum": [torch.full_like(p, complex(v, v) if p.is_complex() else v) for p in params]}

    def form(self, f: Form, hyper) -> None:
        one = f.coef("one", lambda h, t: 1.0)
        acc = f.assign("sum", addcmul(f.state("sum"), f.g, f.g, one))  # torch: value=1
        _divided_by_root(f, acc, hyper["eps_inside_sqrt"])


class Adagrad(Named):
    r"""AdaGrad (torch's ``Adagrad``): per-coordinate rates shrinking with the sum of squared
    gradients, :math:`p \leftarrow p - \frac{\eta_t}{\sqrt{r_t}+\epsilon} g`, with
    :math:`\eta_t = \eta/(1+(t-1)\,\text{lr\_decay})`.

    Chain: ``maximize -> add_l2 -> scale_by_adagrad -> scale_by_lr``. ``eps_inside_sqrt``
    gives the DL-basics lecture's :math:`\eta/\sqrt{G_t+\epsilon}`. Optax's ``adagrad`` puts eps
    inside and starts the accumulator at 0.1; torch and Keras outside (Keras: 1e-7, accumulator
    0.1).
    """

    sparse_grads = True

    # fmt: off
    def __init__(self, params: Params, lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0, eps: float = 1e-10,
                 foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None,
                 eps_inside_sqrt: bool = False, monitor: bool = False) -> None:
    # fmt: on
        adagrad = scale_by_adagrad(initial_accumulator_value=initial_accumulator_value)
        decay = scale_by_lr(lr_decay=0 if lr_decay is None else lr_decay)  # None: refused by type
        super().__init__(params, chain(_maximize(), add_l2(), adagrad, decay), locals())


class scale_by_adadelta(FormRule):
    r"""Adadelta (Zeiler, 2012), the DL-basics lecture's equations:

    .. math::
        G_t = \rho G_{t-1} + (1-\rho) g_t^2, \quad
        \Delta_t = \frac{\sqrt{H_{t-1} + \epsilon}}{\sqrt{G_t + \epsilon}}\, g_t, \quad
        H_t = \rho H_{t-1} + (1-\rho) \Delta_t^2, \quad u = \Delta_t

    followed by :class:`scale_by_lr` (torch's ``lr``, default 1.0 -- the paper has none).
    """

    name = "scale_by_adadelta"
    role = "adaptive learning rate"
    checks = declare(rho=Real(0.0, 1.0, torch="Invalid rho value: {value}"), eps=NONNEG)

    def __init__(self, rho: float = 0.9, eps: float = 1e-6) -> None:
        super().__init__(rho=rho, eps=eps)

    def form(self, f: Form, hyper) -> None:
        rho = f.coef("rho", lambda h, t: h["rho"], uses=("rho",))
        w = f.coef("1mr", lambda h, t: 1 - h["rho"], uses=("rho",))
        eps = f.coef("eps", lambda h, t: h["eps"], uses=("eps",))
        sq = f.assign("square_avg", addcmul(f.state("square_avg") * rho, f.g, f.g, w))
        std = f.let(sqrt(sq + eps))
        delta = f.let((sqrt(f.state("acc_delta") + eps) / std) * f.g)
        f.assign("acc_delta", addcmul(f.state("acc_delta") * rho, delta, delta, w))
        f.out(delta)


class Adadelta(Named):
    r"""Adadelta (torch's ``Adadelta``; the DL-basics lecture's equations), chain
    ``maximize -> add_l2 -> scale_by_adadelta -> scale_by_lr`` with torch's ``lr=1.0``."""

    # fmt: off
    def __init__(self, params: Params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach: bool | None = None, *, capturable: bool = False,
                 maximize: bool = False, differentiable: bool = False, fused: bool | None = None,
                 monitor: bool = False) -> None:
    # fmt: on
        rule = chain(_maximize(), add_l2(), scale_by_adadelta(), scale_by_lr())
        super().__init__(params, rule, locals())


class scale_by_rms(FormRule):
    r"""RMSProp (Hinton, 2012): a moving average of squared gradients.

    .. math:: r_t = \alpha r_{t-1} + (1-\alpha) g_t^2, \qquad
       u = \frac{g_t}{\sqrt{r_t - \bar g_t^2} + \epsilon}

    where :math:`\bar g_t = \alpha \bar g_{t-1} + (1-\alpha) g_t` only when ``centered``
    (Graves, 2013), else 0. ``eps_inside_sqrt`` puts eps under the root (the DL-basics lecture; also
    Optax's ``scale_by_rms``). torch's RMSprop momentum is :class:`trace` after this rule;
    Keras's RMSprop puts eps outside too but defaults it to 1e-7.
    """

    name = "scale_by_rms"
    role = "adaptive learning rate"
    checks = declare(
        alpha=Real(0.0, 1.0, torch="Invalid alpha value: {value}"),
        eps=NONNEG,
        centered=Flag(),
        eps_inside_sqrt=Flag(),
    )
    has_final = True

    def __init__(
        self,
        alpha: float = 0.99,
        eps: float = 1e-8,
        centered: bool = False,
        eps_inside_sqrt: bool = False,
    ) -> None:
        super().__init__(alpha=alpha, eps=eps, centered=centered, eps_inside_sqrt=eps_inside_sqrt)

    def form(self, f: Form, hyper) -> None:
        alpha = f.coef("alpha", lambda h, t: h["alpha"], uses=("alpha",))
        w = f.coef("1ma", lambda h, t: 1 - h["alpha"], uses=("alpha",))
        acc = f.assign("square_avg", addcmul(f.state("square_avg") * alpha, f.g, f.g, w))
        if hyper["centered"]:  # torch: square_avg.addcmul(grad_avg, grad_avg, value=-1)
            ga = f.assign("grad_avg", lerp(f.state("grad_avg", lazy=True), f.g, w))
            acc = addcmul(acc, ga, ga, f.coef("m1", lambda h, t: -1.0))
        _divided_by_root(f, acc, hyper["eps_inside_sqrt"])


class RMSprop(Named):
    r"""RMSprop (torch's ``RMSprop``): chain
    ``maximize -> add_l2 -> scale_by_rms -> trace -> scale_by_lr``.

    ``centered`` subtracts the squared mean gradient; ``momentum > 0`` adds torch's buffer
    :math:`b = \mu b + g/(\sqrt{r}+\epsilon)`; ``eps_inside_sqrt`` gives the DL-basics lecture's
    form.
    """

    # fmt: off
    def __init__(self, params: Params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False, *, eps_inside_sqrt: bool = False,
                 fused: bool | None = None, monitor: bool = False) -> None:
    # fmt: on
        rule = chain(_maximize(), add_l2(), scale_by_rms(centered=centered), trace(), scale_by_lr())
        super().__init__(params, rule, locals())


#: this module's registered optimizers (see descentlab.optim.records)
# fmt: off
RECORDS: tuple[OptimizerRecord, ...] = (
    OptimizerRecord(
        name="adagrad", display="AdaGrad", color="#009E73", family="adaptive", adaptive=True,
        year=2011,
        lr_range=(1e-2, 1.0), demo_lr={"ravine": 1.0, "saddle": 0.3}, factory=Adagrad,
        reference="Duchi, Hazan & Singer, Adaptive Subgradient Methods (...), JMLR 2011",
        parity=(
            ParityConfig("adagrad", "Adagrad", dict(lr=0.05), dict(lr=0.02)),
            ParityConfig(
                "adagrad-decay-init",
                "Adagrad",
                dict(lr=0.05, lr_decay=1e-2, initial_accumulator_value=0.1, weight_decay=1e-3),
                dict(lr_decay=0.0),
            ),
            ParityConfig("adagrad-maximize", "Adagrad", dict(lr=0.05, maximize=True, eps=1e-6)),
        ),
    ),
    OptimizerRecord(
        # lr multiplies an already unit-corrected step (torch's default is 1.0; short runs
        # favour larger values)
        name="adadelta", display="Adadelta", color="#CC79A7", family="adaptive", adaptive=False,
        year=2012,
        lr_range=(1.0, 100.0), demo_lr={"ravine": 20.0, "saddle": 10.0}, factory=Adadelta,
        fixed_lr=1.0,
        reference="Zeiler, ADADELTA: An Adaptive Learning Rate Method, arXiv:1212.5701 (2012)",
        parity=(
            ParityConfig("adadelta", "Adadelta", {}, dict(rho=0.95)),
            ParityConfig(
                "adadelta-wd",
                "Adadelta",
                dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=1e-2),
                dict(lr=1.0),
            ),
        ),
    ),
    OptimizerRecord(
        name="rmsprop", display="RMSProp", color="#E69F00", family="adaptive", adaptive=True,
        year=2012,
        lr_range=(1e-3, 1e-1), demo_lr={"ravine": 0.05, "saddle": 0.02}, factory=RMSprop,
        reference="Tieleman & Hinton, Neural Networks for Machine Learning, lecture 6.5, 2012",
        parity=(
            ParityConfig("rmsprop", "RMSprop", dict(lr=1e-3), dict(alpha=0.9)),
            ParityConfig(
                "rmsprop-centered", "RMSprop", dict(lr=1e-3, centered=True), dict(lr=5e-4)
            ),
            ParityConfig(
                "rmsprop-momentum", "RMSprop", dict(lr=1e-3, momentum=0.9), dict(momentum=0.5)
            ),
            ParityConfig(
                "rmsprop-centered-momentum-wd",
                "RMSprop",
                dict(lr=5e-4, momentum=0.9, centered=True, weight_decay=1e-3),
            ),
        ),
    ),
)
# fmt: on
