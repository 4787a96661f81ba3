r"""Gradient descent and momentum: :class:`SGD`, :class:`Momentum`, :class:`Nesterov` and
their rules :class:`trace` (momentum with the learning rate outside the buffer, torch's form)
and :class:`velocity` (the learning rate inside, the lectures' :math:`v = \alpha v - \eta g`).
"""

from __future__ import annotations

from typing import Any

import torch

from .base import Hyper, as_scalar, chain, check_bool, check_choice, is_batched, mul
from .form import Form, FormRule, add, where
from .hyperspec import NONNEG, Flag, Real, Relation, declare
from .records import OptimizerRecord, ParityConfig
from .torchapi import Named, Params
from .transforms import add_l2, scale_by_lr
from .transforms import maximize as _maximize

__all__ = ["SGD", "Momentum", "Nesterov", "trace", "velocity"]


_MOMENTUM = Real(0.0, 1.0, hi_open=True, torch="Invalid momentum value: {value}")


def _nesterov_needs(hyper: Hyper) -> None:
    """Nesterov's form needs a momentum and no dampening."""
    if hyper.get("nesterov", False):  # (runs at each step a schedule moves momentum)
        m, d = hyper["momentum"], hyper.get("dampening", 0.0)
        if m == 0 if type(m) is float else not is_batched(m) and m == 0:
            raise ValueError(f"nesterov=True requires momentum > 0, got momentum={m}")
        if d != 0 if type(d) in (float, int) else is_batched(d) or d != 0:
            raise ValueError(f"nesterov=True requires dampening == 0, got dampening={d}")


def _first_buffers(state, params, grads, hyper) -> None:
    """torch's momentum buffer is the first gradient: the buffers a tensor lacks are made
    (uninitialised: the form stores ``g`` in them), laid out as their parameters, and flagged
    for the step's ``first``."""
    bufs = state.get("momentum_buffer")
    if bufs is None:
        bufs = state["momentum_buffer"] = [None] * len(grads)
    state["_trace_first"] = [b is None for b in bufs]
    for i, b in enumerate(bufs):
        if b is None:
            bufs[i] = torch.empty_like(params[i])  # (preserve_format: the kernel's layout)


class trace(FormRule):
    r"""Heavy-ball momentum with the learning rate *outside* the buffer (torch's SGD).

    .. math::
        b_t = \mu\, b_{t-1} + (1-\tau)\, g_t \quad (b_1 = g_1), \qquad
        u = b_t \;\text{or, with Nesterov,}\; u = g_t + \mu\, b_t

    followed by :class:`scale_by_lr`. The Nesterov form is the change of variables derived
    in the momentum lecture (cs231n): it evaluates the gradient at the current point yet reproduces
    the lookahead method in shifted coordinates. With ``momentum == 0`` the rule passes gradients
    through and keeps no buffer.

    Args:
        momentum: :math:`\mu \in [0, 1)`.
        dampening: :math:`\tau \in [0, 1]` (torch's ``dampening``).
        nesterov: use Nesterov's form (needs momentum > 0 and dampening == 0).
    """

    name = "trace"
    role = "search direction (momentum)"
    needs_step = False

    def __init__(self, momentum: float = 0.9, dampening: float = 0.0, nesterov: bool = False):
        super().__init__(momentum=momentum, dampening=dampening, nesterov=nesterov)

    checks = declare(momentum=_MOMENTUM, dampening=Real(0.0, 1.0), nesterov=Flag())
    # inside [0, 1)'s open bounds a momentum is never 0: the same outcome, the same kernel
    relations = (
        Relation(("nesterov", "momentum", "dampening"), _nesterov_needs, inside=("momentum",)),
    )
    signature_inside = frozenset({"momentum"})

    def init(self, params):
        return {}  # the buffer is made on a tensor's first step, as torch makes it

    def fuse_signature(self, hyper):
        m = hyper["momentum"]
        active = m != 0 if type(m) is float else is_batched(m) or as_scalar(m) != 0
        return (active, bool(hyper.get("nesterov", False)))

    def passes_through(self, hyper: Hyper) -> bool:
        return not self.fuse_signature(hyper)[0]

    def form(self, f: Form, hyper) -> None:
        active, nesterov = self.fuse_signature(hyper)
        if not active:
            f.out(f.g)
            return
        f.prepare(_first_buffers, fills=("momentum_buffer",), steady=True)
        first = f.coef(
            "first", lambda h, t, e: float(bool(e)), per_tensor=lambda st, i: st["_trace_first"][i]
        )
        m = f.coef("m", lambda h, t: h["momentum"], uses=("momentum",))
        keep = f.coef("1md", lambda h, t: 1 - h.get("dampening", 0.0), uses=("dampening",))
        buf = f.state("momentum_buffer")
        buf = f.assign("momentum_buffer", where(first, f.g, add(buf * m, f.g, keep)))
        f.out(add(f.g, buf, m) if nesterov else buf)


class velocity(FormRule):
    r"""Momentum with the learning rate *inside* the velocity (the optimization-basics, derivatives
    and momentum (eq. 5.12) lectures):

    .. math:: v_t = \alpha\, v_{t-1} - \eta\, g_t, \qquad u = v_t \qquad (v_0 = 0)

    It replaces :class:`scale_by_lr` in a chain. At a constant learning rate it produces the
    same iterates as :class:`trace` (``v = -lr * b``); when the rate changes they differ:
    here a new rate only affects new gradients, while in torch's form it rescales the whole
    accumulated buffer at once.

    ``nesterov=True`` uses the momentum lecture's change of variables,
    :math:`u = -\alpha v_{t-1} + (1+\alpha) v_t`. ``lookahead=True`` evaluates the gradient
    at the true lookahead point :math:`w + \alpha v` (the derivatives and DL-basics lectures, eq.
    5.13): the optimizer then requires a closure and calls it at the shifted parameters.

    Args:
        momentum: :math:`\alpha \in [0, 1)`.
        lr: :math:`\eta \ge 0` (a hyperparameter of this rule).
        nesterov: change-of-variables Nesterov.
        lookahead: gradient at the lookahead point (structural; fixed at construction).
    """

    name = "velocity"
    role = "search direction (momentum)"
    needs_step = False

    def __init__(
        self,
        momentum: float = 0.9,
        lr: Any = 1e-3,
        nesterov: bool = False,
        *,
        lookahead: bool = False,
    ) -> None:
        super().__init__(momentum=momentum, lr=lr, nesterov=nesterov)
        check_bool("lookahead", lookahead)
        self.lookahead = lookahead
        if lookahead:
            self.name = "velocity_lookahead"

    def __repr__(self) -> str:
        # `name` tells the lookahead form apart in the family tree; the repr is the call that
        # builds this rule again.
        args = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
        return f"velocity({args}" + (", lookahead=True)" if self.lookahead else ")")

    checks = declare(momentum=_MOMENTUM, lr=NONNEG, nesterov=Flag())

    @property
    def relations(self) -> tuple[Relation, ...]:  # type: ignore[override]
        return (Relation(("nesterov",), self._one_form),) if self.lookahead else ()

    @staticmethod
    def _one_form(hyper: Hyper) -> None:
        """nesterov=True and lookahead=True are two forms of one method: one at a time."""
        if hyper.get("nesterov", False):
            raise ValueError(
                "nesterov=True (change of variables) and lookahead=True are two forms of the "
                "same method; choose one"
            )

    def lookahead_shift(self, state, params, hyper):
        if not self.lookahead:
            return None
        vs = state.get("velocity")
        if vs is None:
            return None
        return mul(vs, as_scalar(hyper["momentum"]))

    def form(self, f: Form, hyper) -> None:
        a = f.coef("a", lambda h, t: h["momentum"], uses=("momentum",))
        neg_lr = f.coef("neglr", lambda h, t: -h["lr"], uses=("lr",))
        v = f.state("velocity")
        prev = f.let(v) if hyper.get("nesterov", False) else None
        v = f.assign("velocity", add(v * a, f.g, neg_lr))
        if prev is None:
            f.out(v)
            return
        neg_a = f.coef("nega", lambda h, t: -h["momentum"], uses=("momentum",))
        one_plus_a = f.coef("1pa", lambda h, t: 1 + h["momentum"], uses=("momentum",))
        f.out(add(prev * neg_a, v, one_plus_a))  # u = (1 + a) v_new - a v_old


class SGD(Named):
    r"""Stochastic gradient descent, with optional momentum (torch's ``SGD``).

    .. math::
        g \leftarrow \pm g + \lambda p,\quad
        b_t = \mu b_{t-1} + (1-\tau) g,\quad
        p \leftarrow p - \eta\,(b_t \text{ or } g + \mu b_t)

    Chain: ``maximize -> add_l2 -> trace -> scale_by_lr``. With ``momentum=0`` this is the
    plain update :math:`w \leftarrow w - \eta \nabla L` of all five lectures: full-batch gradient
    descent, SGD or mini-batch SGD depending only on the batch the gradient comes from.

    Example:
        >>> import torch
        >>> from descentlab.optim import SGD
        >>> model = torch.nn.Linear(4, 1)
        >>> opt = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    """

    sparse_grads = True

    # fmt: off
    def __init__(self, params: Params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False,
                 fused: bool | None = None, monitor: bool = False) -> None:
    # fmt: on
        super().__init__(params, chain(_maximize(), add_l2(), trace(), scale_by_lr()), locals())


class Momentum(Named):
    r"""Gradient descent with momentum, in either of the lectures' two forms.

    - ``form="torch"`` (default; the DL-basics lecture, cs231n in the momentum lecture): the buffer
      accumulates gradients and the learning rate multiplies outside,
      :math:`b = \mu b + g,\; w \leftarrow w - \eta b` (torch's ``SGD(momentum=...)``).
    - ``form="velocity"`` (the optimization-basics, derivatives, momentum (eq. 5.12) and PyTorch
      losses lectures): the learning rate is inside, :math:`v = \alpha v - \eta g,\; w \leftarrow w
      + v`.

    Equal at a constant learning rate; different when a schedule changes it (the velocity
    form keeps old steps at their old size).
    """

    options = ("form", "dampening")  # dampening: a hyperparameter of the torch form only

    # fmt: off
    def __init__(self, params: Params, lr: float = 1e-3, momentum: float = 0.9,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False, *,
                 form: str = "torch", maximize: bool = False, fused: bool | None = None,
                 monitor: bool = False) -> None:
    # fmt: on
        check_choice("form", form, ("torch", "velocity"))
        if form == "torch":
            chained = chain(_maximize(), add_l2(), trace(), scale_by_lr())
            super().__init__(params, chained, locals(), dampening=dampening)
        elif dampening != 0:
            raise ValueError(f"dampening applies to form='torch' only, got {dampening}")
        else:
            super().__init__(params, chain(_maximize(), add_l2(), velocity()), locals())
        self.form = form


class Nesterov(Named):
    r"""Nesterov's accelerated gradient, as a change of variables or as a true lookahead.

    - ``lookahead=False`` (default): torch's change-of-variables form derived in the momentum
      lecture, :math:`b = \mu b + g(w),\; w \leftarrow w - \eta (g + \mu b)` (``form="torch"``), or
      :math:`v' = \alpha v - \eta g(w),\; w \leftarrow w - \alpha v + (1+\alpha) v'`
      (``form="velocity"``). Both evaluate the gradient at the current point.
    - ``lookahead=True`` (the derivatives and DL-basics lectures, eq. 5.13): the gradient is
      evaluated at the lookahead point, :math:`v = \alpha v - \eta \nabla f(w + \alpha v),\; w
      \leftarrow w+v`. ``step`` then needs a closure, which the optimizer calls with the parameters
      shifted.
    """

    options = ("lookahead", "form")

    # fmt: off
    def __init__(self, params: Params, lr: float = 1e-3, momentum: float = 0.9,
                 weight_decay: float = 0, *, lookahead: bool = False, form: str = "torch",
                 maximize: bool = False, fused: bool | None = None, monitor: bool = False) -> None:
    # fmt: on
        check_bool("lookahead", lookahead)
        check_choice("form", form, ("torch", "velocity"))
        if lookahead:
            super().__init__(
                params, chain(_maximize(), add_l2(), velocity(lookahead=True)), locals()
            )
        elif form == "torch":
            chained = chain(_maximize(), add_l2(), trace(nesterov=True), scale_by_lr())
            super().__init__(params, chained, locals(), nesterov=True)
        else:
            chained = chain(_maximize(), add_l2(), velocity(nesterov=True))
            super().__init__(params, chained, locals(), nesterov=True)
        self.lookahead = lookahead


#: this module's registered optimizers (see descentlab.optim.records)
# fmt: off
RECORDS: tuple[OptimizerRecord, ...] = (
    OptimizerRecord(
        name="sgd", display="SGD", color="#D62728", family="sgd", adaptive=False, year=1951,
        lr_range=(1e-2, 1.0), demo_lr={"ravine": 0.18, "saddle": 0.05}, factory=SGD,
        reference="Robbins & Monro, A Stochastic Approximation Method, Ann. Math. Statist. 1951",
        parity=(
            ParityConfig("sgd", "SGD", dict(lr=0.1), dict(lr=0.05)),
            ParityConfig("sgd-momentum", "SGD", dict(lr=0.05, momentum=0.9), dict(momentum=0.5)),
            ParityConfig(
                "sgd-dampening", "SGD", dict(lr=0.05, momentum=0.9, dampening=0.3), dict(lr=0.1)
            ),
            ParityConfig(
                "sgd-nesterov", "SGD", dict(lr=0.05, momentum=0.9, nesterov=True), dict(lr=0.02)
            ),
            ParityConfig(
                "sgd-weight-decay",
                "SGD",
                dict(lr=0.05, momentum=0.9, weight_decay=1e-2),
                dict(weight_decay=0.0),
            ),
            ParityConfig(
                "sgd-maximize", "SGD", dict(lr=0.05, momentum=0.8, maximize=True), dict(lr=0.1)
            ),
        ),
    ),
    OptimizerRecord(
        name="momentum", display="Momentum", color="#0072B2", family="momentum", adaptive=False,
        year=1964,
        lr_range=(1e-2, 1.0), demo_lr={"ravine": 0.02, "saddle": 0.01}, factory=Momentum,
        reference="Polyak, Some methods of speeding up the convergence of iteration methods, 1964",
    ),
    OptimizerRecord(
        name="nesterov", display="Nesterov", color="#56B4E9", family="momentum", adaptive=False,
        year=1983,
        lr_range=(1e-2, 1.0), demo_lr={"ravine": 0.02, "saddle": 0.01}, factory=Nesterov,
        reference="Nesterov, A method for solving the convex programming problem (...), 1983",
    ),
)
# fmt: on
