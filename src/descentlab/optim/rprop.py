r"""Rprop (Riedmiller & Braun, 1993): rule :class:`scale_by_rprop` and optimizer :class:`Rprop`."""

from __future__ import annotations

import torch

from .base import (
    Hyper,
    Rule,
    as_scalar,
    chain,
    check_range,
    lazy_state,
    scratch,
    zeros,
)
from .hyperspec import NONNEG, Pair, Real, Relation, declare
from .records import OptimizerRecord, ParityConfig
from .torchapi import Named, Params
from .transforms import maximize as _maximize

__all__ = ["RECORDS", "Rprop", "scale_by_rprop"]


_ONE = Real.message


def _ordered(hyper: Hyper) -> None:
    """The largest step size is at least the smallest."""
    lo, hi = hyper["step_sizes"]
    check_range("step_sizes[1]", hi, as_scalar(lo))


class scale_by_rprop(Rule):
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
    state_keys = ("prev", "step_size")

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

    @staticmethod
    def _sizes(state, grads, hyper) -> list:
        """The step sizes, made from the group's lr on a tensor's first step (as torch)."""
        lr = as_scalar(hyper["lr"])
        return lazy_state(state, "step_size", grads, lambda g: torch.full_like(g, lr))

    def fuse(self, b, hyper):
        b.prepare(
            lambda state, params, grads, hyper: self._sizes(state, grads, hyper),
            fills=("step_size",),
            steady=True,
        )
        prev = b.state("prev", write=True)
        size = b.state("step_size", write=True)
        minus = b.coef("rprop_minus", lambda h, t, e: float(h["etas"][0]), uses=("etas",))
        plus = b.coef("rprop_plus", lambda h, t, e: float(h["etas"][1]), uses=("etas",))
        lo = b.coef("rprop_lo", lambda h, t, e: float(h["step_sizes"][0]), uses=("step_sizes",))
        hi = b.coef("rprop_hi", lambda h, t, e: float(h["step_sizes"][1]), uses=("step_sizes",))
        one, zero = "dl_bc<T>(1)", "dl_bc<T>(0)"
        g = b.u
        # the sign of the rounded product picks the factor (a NaN product's sign is 0 in
        # torch: factor 1); clamp_(lo, hi) keeps a NaN size
        gp = b.let(f"{g} * {prev}")
        factor = b.let(f"({gp} > 0) ? {plus} : (({gp} < 0) ? {minus} : {one})")
        grown = b.let(f"{size} * {factor}")
        low = b.let(f"({grown} < {lo}) ? {lo} : {grown}")
        b.line(f"{size} = ({low} > {hi}) ? {hi} : {low};")
        b.line(f"{prev} = ({gp} < 0) ? {zero} : {g};")
        sign = b.let(f"({prev} > 0) ? {one} : (({prev} < 0) ? -{one} : {zero})")
        b.u = b.let(f"-({sign} * {size})")
        return True

    def update(self, grads, state, params, hyper):
        minus, plus = (as_scalar(e) for e in hyper["etas"])
        lo, hi = (as_scalar(s) for s in hyper["step_sizes"])
        prevs = state["prev"]
        sizes = self._sizes(state, grads, hyper)
        out = scratch(state, grads)
        for g, prev, size, o in zip(grads, prevs, sizes, out, strict=True):
            factor = torch.mul(g, prev).sign_()
            flipped = factor < 0
            factor.masked_fill_(factor > 0, plus).masked_fill_(flipped, minus)
            factor.masked_fill_(factor == 0, 1.0)
            size.mul_(factor).clamp_(lo, hi)
            prev.copy_(g).masked_fill_(flipped, 0.0)
            torch.sign(prev, out=o).mul_(size).neg_()
        return out, state


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
