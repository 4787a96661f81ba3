r"""Rprop (Riedmiller & Braun, 1993): rule :class:`scale_by_rprop` and optimizer :class:`Rprop`."""

from __future__ import annotations

import torch

from .base import Hyper, as_scalar, chain, lazy_state, zeros
from .form import Form, FormRule, clamp, gt, lt, sign, where
from .hyperspec import NONNEG, Pair, Real, Relation, declare
from .records import OptimizerRecord, ParityConfig
from .torchapi import Named, Params
from .transforms import maximize as _maximize

__all__ = ["Rprop", "scale_by_rprop"]


_ONE = Real.message


def _ordered(hyper: Hyper) -> None:
    """The largest step size is at least the smallest."""
    lo, hi = hyper["step_sizes"]
    Real(as_scalar(lo)).check("step_sizes[1]", hi, "")


class scale_by_rprop(FormRule):
    r"""Rprop (Riedmiller & Braun, 1993), torch's variant: per-coordinate step sizes that
    grow while the gradient keeps its sign and shrink when it flips.

    .. math::
        s_t = \operatorname{clip}\big(s_{t-1}\cdot
        \begin{cases}\eta_+ & g_t g_{t-1} > 0\\ \eta_- & g_t g_{t-1} < 0\\ 1 & \text{else}
        \end{cases},\ s_{\min}, s_{\max}\big), \qquad
        u = -s_t \operatorname{sign}(g_t)

    where a coordinate whose sign flipped takes no step and its stored gradient becomes 0
    (so the next step does not shrink it again). :math:`s_0` = the group's ``lr``. The
    update is final: do not follow this rule with :class:`scale_by_lr`. Rprop reads only
    gradient signs, so it is meant for full-batch gradients (as torch's documentation says).

    Args:
        lr: the initial step size :math:`s_0 > 0`.
        etas: :math:`(\eta_-, \eta_+)`, with :math:`0 < \eta_- < 1 < \eta_+`.
        step_sizes: :math:`(s_{\min}, s_{\max})`.
    """

    name = "scale_by_rprop"
    role = "adaptive learning rate"
    local = False
    needs_step = False

    def __init__(
        self,
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
    ) -> None:
        super().__init__(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes))

    def init(self, params):
        return {"prev": zeros(params)}

    checks = declare(
        lr=Real(0.0, scalar=True),
        etas=Pair(
            Real(0.0, 1.0, lo_open=True, hi_open=True),
            Real(1.0, lo_open=True),
            scalar=True,
            message=_ONE,
            torch="Invalid eta values: {value[0]}, {value[1]}",
        ),
        step_sizes=Pair(NONNEG, Real(), scalar=True, message=_ONE),
    )
    relations = (Relation(("step_sizes",), _ordered),)

    def form(self, f: Form, hyper) -> None:
        f.prepare(_first_sizes, fills=("step_size",), steady=True)
        minus = f.coef("minus", lambda h, t: h["etas"][0], uses=("etas",))
        plus = f.coef("plus", lambda h, t: h["etas"][1], uses=("etas",))
        lo = f.coef("lo", lambda h, t: h["step_sizes"][0], uses=("step_sizes",))
        hi = f.coef("hi", lambda h, t: h["step_sizes"][1], uses=("step_sizes",))
        one, zero = f.coef("one", lambda h, t: 1.0), f.coef("zero", lambda h, t: 0.0)
        # the sign of the rounded product picks the factor (a NaN product's sign is 0 in
        # torch: factor 1); clamp keeps a NaN size
        gp = f.let(f.g * f.state("prev"))
        factor = where(gt(gp, zero), plus, where(lt(gp, zero), minus, one))
        size = f.assign("step_size", clamp(f.state("step_size") * factor, lo, hi))
        prev = f.assign("prev", where(lt(gp, zero), zero, f.g))
        f.out(-(sign(prev) * size))


def _first_sizes(state, params, grads, hyper) -> None:
    """The step sizes, made from the group's lr on a tensor's first step (as torch)."""
    lr = as_scalar(hyper["lr"])
    lazy_state(state, "step_size", params, lambda p: torch.full_like(p, lr))


class Rprop(Named):
    r"""Rprop (torch's ``Rprop``): chain ``maximize -> scale_by_rprop``; sign-based steps
    whose per-coordinate sizes start at ``lr`` and adapt by ``etas`` within
    ``step_sizes`` (see :class:`~descentlab.optim.scale_by_rprop`). Meant for full-batch
    gradients.

    Example:
        >>> import torch
        >>> from descentlab.optim import Rprop
        >>> opt = Rprop(torch.nn.Linear(4, 1).parameters(), lr=0.01, fused=False)
    """

    # fmt: off
    def __init__(self, params: Params, lr: float = 1e-2, etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), *, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False, differentiable: bool = False,
                 fused: bool | None = None, monitor: bool = False) -> None:
    # fmt: on
        super().__init__(params, chain(_maximize(), scale_by_rprop()), locals())


#: this module's registered optimizers (see descentlab.optim.records)
# fmt: off
RECORDS: tuple[OptimizerRecord, ...] = (
    OptimizerRecord(
        # lr is Rprop's initial step per coordinate (then adapted within step_sizes)
        name="rprop", display="Rprop", color="#AA4499", family="adaptive", adaptive=True,
        year=1993,
        lr_range=(1e-4, 1e-2), demo_lr={}, factory=Rprop,
        reference="Riedmiller & Braun, A Direct Adaptive Method (...): the RPROP Algorithm, 1993",
        parity=(
            ParityConfig("rprop", "Rprop", dict(lr=1e-3), dict(lr=5e-4)),
            ParityConfig(
                "rprop-etas-sizes",
                "Rprop",
                dict(lr=1e-3, etas=(0.3, 1.5), step_sizes=(1e-5, 1e-2), maximize=True),
                dict(etas=(0.6, 1.1)),
            ),
        ),
    ),
)
# fmt: on
