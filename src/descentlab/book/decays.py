r"""The lectures' decay schedules, written as the lectures write them.

* The momentum lecture (cs231n's "learning rate decay over time"): **step decay** ("decay
  learning rate by half every few epochs"), **exponential decay** :math:`\alpha = \alpha_0 e^{-kt}`
  and **1/t decay** :math:`\alpha = \alpha_0 / (1 + kt)`.
* The optimization lecture (learning-rate scheduling for SGD): :math:`\eta_t = \eta / t`, the
  textbook schedule meeting the Robbins-Monro conditions :math:`\sum_t \eta_t = \infty,\ \sum_t
  \eta_t^2 < \infty` (check any schedule with :func:`~descentlab.book.convergence.robbins_monro`).

The library's own schedules say the same with the field's names: `step_decay` is
:func:`~descentlab.schedules.step`, `exp_decay` is :func:`~descentlab.schedules.exponential` with
:math:`\gamma = e^{-k}`, `inverse_time` is :func:`~descentlab.schedules.inverse_time_decay`.

The lectures count epochs or updates ``t``; here ``step`` is the number of updates already
taken, 0 for the first, as for every schedule of :mod:`descentlab.schedules`. The base
(:math:`\alpha_0`, :math:`\eta`) is None by default: a
:class:`~descentlab.schedules.Scheduler` then takes the param group's value.
"""

from __future__ import annotations

import math
from numbers import Real

from descentlab.constraints import NONNEGATIVE, POSITIVE, POSITIVE_INT, Interval, check
from descentlab.schedules.base import Schedule
from descentlab.schedules.torchlike import InverseTime

__all__ = [
    "EtaOverT",
    "ExpDecay",
    "InverseTimeDecay",
    "StepDecay",
    "eta_over_t",
    "exp_decay",
    "inverse_time",
    "step_decay",
]


class _FromA0(Schedule):
    r"""A schedule whose base the lecture calls :math:`\alpha_0` (``a0``)."""

    @property
    def a0(self) -> float | None:
        """The initial value (None: inherited)."""
        return self.base


class _Decay(_FromA0):
    r"""A decay :math:`\alpha_0 f(k t)` with rate ``k >= 0``."""

    _fields = ("k", "a0")

    def __init__(self, k: float, a0: float | None = None) -> None:
        self.k = check("k", k, NONNEGATIVE)
        self.base = check("a0", a0, None, NONNEGATIVE)


class StepDecay(_FromA0):
    r"""The momentum lecture's step decay: multiply by `drop` every `every` steps (epochs).

    .. math:: \alpha(t) = \alpha_0 \cdot \text{drop}^{\lfloor t / \text{every} \rfloor}

    The same values as torch's ``StepLR(step_size=every, gamma=drop)``; the lecture's example
    halves (``drop=0.5``).

    Args:
        every: period >= 1.
        drop: factor per period, in (0, 1].
        a0: :math:`\alpha_0`, or None to inherit.

    Example:
        >>> step_decay(10, a0=0.1)(25)
        0.025
    """

    _fields = ("every", "drop", "a0")

    def __init__(self, every: int, drop: float = 0.5, a0: float | None = None) -> None:
        self.every = check("every", every, POSITIVE_INT)
        self.drop = check("drop", drop, Interval(Real, 0, 1, closed="right"))
        self.base = check("a0", a0, None, NONNEGATIVE)

    def _at(self, step: int, base: float) -> float:
        return base * self.drop ** (step // self.every)


def step_decay(every: int, drop: float = 0.5, a0: float | None = None) -> StepDecay:
    """The momentum lecture's step decay (halve every `every` steps by default); see `StepDecay`."""
    return StepDecay(every, drop, a0)


class ExpDecay(_Decay):
    r"""The momentum lecture's exponential decay :math:`\alpha(t) = \alpha_0 e^{-kt}`.

    Equal to torch's ``ExponentialLR(gamma=exp(-k))`` up to rounding. Its sum converges
    (to :math:`\alpha_0 / (1 - e^{-k})`), so it fails Robbins-Monro's first condition: on an
    infinite horizon it stops short of the optimum if it starts too far.

    Args:
        k: decay rate >= 0.
        a0: :math:`\alpha_0`, or None to inherit.

    Example:
        >>> round(exp_decay(0.5, a0=1.0)(2), 12)
        0.367879441171
    """

    def _at(self, step: int, base: float) -> float:
        return base * math.exp(-self.k * step)


def exp_decay(k: float, a0: float | None = None) -> ExpDecay:
    """The momentum lecture's ``a0 * exp(-k t)``; see `ExpDecay`."""
    return ExpDecay(k, a0)


class InverseTimeDecay(_Decay):
    r"""The momentum lecture's 1/t decay :math:`\alpha(t) = \alpha_0 / (1 + kt)`: the core's
    :class:`~descentlab.schedules.torchlike.InverseTime` with the lecture's ``a0``.

    Example:
        >>> inverse_time(0.5, a0=1.0)(2)
        0.5
    """

    _at = InverseTime._at


def inverse_time(k: float, a0: float | None = None) -> InverseTimeDecay:
    """The momentum lecture's ``a0 / (1 + k t)``; see `InverseTimeDecay`."""
    return InverseTimeDecay(k, a0)


class EtaOverT(Schedule):
    r"""The optimization lecture's Robbins-Monro schedule :math:`\eta_t = \eta / t`.

    The lecture counts updates from :math:`t = 1`; our steps count from 0, so step ``s`` is the
    lecture's :math:`t = s + t_0` with :math:`t_0 = 1` by default: the first update uses
    :math:`\eta`, the second :math:`\eta/2`, and nothing divides by zero. A larger `t0` delays
    the decay (:math:`\eta / (s + t_0)`), which is the same as ``inverse_time(1/t0, a0=eta/t0)``.

    Args:
        eta: :math:`\eta`, or None to inherit.
        t0: the lecture's t at step 0, > 0.

    Example:
        >>> s = eta_over_t(1.0)
        >>> s(0), s(1), s(3)
        (1.0, 0.5, 0.25)
    """

    _fields = ("eta", "t0")

    def __init__(self, eta: float | None = None, t0: float = 1.0) -> None:
        self.base = check("eta", eta, None, NONNEGATIVE)
        self.t0 = check("t0", t0, POSITIVE)

    @property
    def eta(self) -> float | None:
        """The numerator (None: inherited)."""
        return self.base

    def _at(self, step: int, base: float) -> float:
        return base / (step + self.t0)


def eta_over_t(eta: float | None = None, t0: float = 1.0) -> EtaOverT:
    """The optimization lecture's ``eta / t`` with ``t = step + t0``; see `EtaOverT`."""
    return EtaOverT(eta, t0)
