r"""Lion (Chen et al., 2023): the sign of an interpolated momentum.

.. math::
    c_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
    p_t = p_{t-1} - \eta\,\big(\operatorname{sign}(c_t) + \lambda\, p_{t-1}\big), \qquad
    m_t = \beta_2 m_{t-1} + (1-\beta_2)\, g_t

Every coordinate moves by exactly :math:`\eta` (plus the decay): the update has a larger
norm than Adam's, so Lion's learning rate is 3-10x smaller than AdamW's and its weight decay
3-10x larger. Chain: ``maximize -> scale_by_lion -> add_decayed_weights -> scale_by_lr``,
Optax's ``optax.lion`` (``scale_by_lion -> add_decayed_weights -> scale_by_learning_rate``);
matched to 1e-10 in float64 (``tests/test_optax_reference.py``). Elementwise, with a fused
form.

Conventions: the decay is multiplied by the learning rate (Optax's and the paper's code;
the paper's equations write :math:`\eta_t\lambda`); :math:`\operatorname{sign}(0) = 0`.
"""

from __future__ import annotations

from .base import chain
from .form import Form, FormRule, lerp, sign
from .hyperspec import BETAS, declare
from .records import OptimizerRecord
from .torchapi import Named, Params, pair
from .transforms import add_decayed_weights, scale_by_lr
from .transforms import maximize as _maximize

__all__ = ["Lion", "scale_by_lion"]


class scale_by_lion(FormRule):
    r"""Lion's direction :math:`u = \operatorname{sign}(\beta_1 m + (1-\beta_1) g)`, then
    :math:`m \leftarrow \beta_2 m + (1-\beta_2) g` (both through torch's ``lerp``).

    Args:
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).

    Example:
        >>> from descentlab import optim
        >>> optim.scale_by_lion(betas=(0.9, 0.99))
        scale_by_lion(betas=(0.9, 0.99))
    """

    name = "scale_by_lion"
    role = "direction + adaptive rate"
    local = False  # as before the form: not among the trajectory kernels' rules
    checks = declare(betas=BETAS)

    def __init__(self, betas: tuple[float, float] = (0.9, 0.99)) -> None:
        super().__init__(betas=pair(betas))

    def form(self, f: Form, hyper) -> None:
        w1 = f.coef("1mb1", lambda h, t: 1 - h["betas"][0], uses=("betas",))
        w2 = f.coef("1mb2", lambda h, t: 1 - h["betas"][1], uses=("betas",))
        m = f.state("exp_avg")
        c = f.let(lerp(m, f.g, w1))
        f.assign("exp_avg", lerp(m, f.g, w2))
        f.out(sign(c))


class Lion(Named):
    r"""Lion (Chen et al., 2023): chain ``maximize -> scale_by_lion -> add_decayed_weights
    -> scale_by_lr``; the signature of ``lion-pytorch`` (``betas``, decoupled
    ``weight_decay`` multiplied by ``lr``).

    Args:
        params: parameters or param groups.
        lr: learning rate (> 0; typically 3-10x below AdamW's).
        betas: :math:`(\beta_1, \beta_2)`: the interpolation of the update's sign and the
            momentum's decay.
        weight_decay: decoupled decay :math:`\lambda` (``p <- p - lr * lambda * p``).
        maximize: ascend instead.
        fused: backend (None: fused where it can, see :mod:`descentlab.optim.named`).

    Example:
        >>> import torch
        >>> from descentlab.optim import Lion
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> opt = Lion([w], lr=0.1, fused=False)
        >>> (w * w).sum().backward(); opt.step()
        >>> w.detach().tolist()
        [0.8999999761581421, -1.899999976158142]
    """

    # fmt: off
    def __init__(self, params: Params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0, *, maximize: bool = False,
                 foreach: bool | None = None, fused: bool | None = None,
                 monitor: bool = False) -> None:
    # fmt: on
        rule = chain(_maximize(), scale_by_lion(), add_decayed_weights(0.0), scale_by_lr())
        super().__init__(params, rule, locals())


#: this module's registered optimizer (see descentlab.optim.records)
# fmt: off
RECORDS: tuple[OptimizerRecord, ...] = (OptimizerRecord(
    name="lion", display="Lion", color="#44AA99", family="adaptive", adaptive=True,
    year=2023, factory=Lion, lr_range=(1e-4, 1e-2), demo_lr={"ravine": 0.18, "saddle": 0.1},
    reference="Chen et al., Symbolic Discovery of Optimization Algorithms, NeurIPS 2023 "
    "(arXiv:2302.06675)",
),)
# fmt: on
