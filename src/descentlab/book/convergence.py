r"""Check a schedule against the Robbins-Monro conditions over a finite horizon (the
optimization lecture; only the book uses it): how the verdict is read from the partial sums
is in docs/schedules.md.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from descentlab.constraints import POSITIVE, Interval, check, invalid
from descentlab.schedules.base import Schedule, as_schedule
from descentlab.schedules.loss_driven import LossRule

__all__ = [
    "RobbinsMonroReport",
    "growth_exponent",
    "robbins_monro",
]

_DOUBLINGS = 4


@dataclass(frozen=True)
class RobbinsMonroReport:
    """What `robbins_monro` found: the schedule's values and the tolerance it read them with;
    everything else is computed from those two.

    Attributes:
        eta: the schedule's values, shape (horizon,).
        tolerance: a sum counts as unbounded while its growth exponent is > -tolerance.
    """

    eta: np.ndarray
    tolerance: float

    @property
    def horizon(self) -> int:
        """Number of steps examined (steps 0 .. horizon-1)."""
        return len(self.eta)

    @functools.cached_property
    def sum_eta(self) -> np.ndarray:
        """Partial sums :math:`S_1(n) = \\sum_{t<n}\\eta_t`, ``sum_eta[n-1]``."""
        return np.cumsum(self.eta)

    @functools.cached_property
    def sum_eta_sq(self) -> np.ndarray:
        """Partial sums of :math:`\\eta_t^2`."""
        return np.cumsum(self.eta * self.eta)

    @functools.cached_property
    def eta_exponent(self) -> float:
        """Growth exponent of ``sum_eta`` per doubling (0 for 1/t, 1 for a constant)."""
        return growth_exponent(self.sum_eta)

    @functools.cached_property
    def eta_sq_exponent(self) -> float:
        """The same for ``sum_eta_sq``."""
        return growth_exponent(self.sum_eta_sq)

    @property
    def eta_sum_diverges(self) -> bool:
        """The first condition holds over the horizon."""
        return self.eta_exponent > -self.tolerance

    @property
    def eta_sq_sum_converges(self) -> bool:
        """The second condition holds over the horizon."""
        return not (self.eta_sq_exponent > -self.tolerance)

    @property
    def meets(self) -> bool:
        """Both conditions hold."""
        return self.eta_sum_diverges and self.eta_sq_sum_converges

    @property
    def explanation(self) -> str:
        """A one-paragraph account of the verdict: how both sums grow, and why."""
        diverges, converges = self.eta_sum_diverges, self.eta_sq_sum_converges
        if self.meets:
            why = (
                "the steps can still travel any distance while their total noise variance is finite"
            )
        elif not diverges:
            why = "sum eta stays bounded, so the iterates can stall before reaching the optimum"
        else:
            why = "sum eta^2 grows without bound, so the gradient noise never averages out"
        return (
            f"Over {self.horizon} steps: "
            + _growth("sum eta", float(self.sum_eta[-1]), self.eta_exponent, diverges)
            + "; "
            + _growth("sum eta^2", float(self.sum_eta_sq[-1]), self.eta_sq_exponent, not converges)
            + f". Robbins-Monro conditions {'met' if self.meets else 'not met'}: {why} "
            f"(a sum counts as unbounded while its exponent > {-self.tolerance:g})."
        )


def growth_exponent(partial_sums: np.ndarray, doublings: int = _DOUBLINGS) -> float:
    r"""Growth exponent of partial sums over the last `doublings` doublings of their length.

    With :math:`n_j = \lfloor h / 2^j \rfloor` and the mean term over each interval,
    :math:`A_j = (S(n_j) - S(n_{j+1})) / (n_j - n_{j+1})`, the exponent is
    :math:`1 + ` the least-squares slope of :math:`\log A_j` against :math:`\log n_j`:
    exactly 1 for a constant, 0 for the harmonic series, :math:`1 - p` for terms :math:`t^{-p}`.
    Dividing by the interval length keeps it exact when `h` is not a power of two.

    Args:
        partial_sums: nondecreasing partial sums, ``partial_sums[n-1] = S(n)``.
        doublings: how many doublings (ending at the horizon) to fit, >= 2.

    Returns:
        The exponent (``-inf`` when the sum stopped growing over the last doubling).
    """
    doublings = check("doublings", doublings, Interval(Integral, 2, None))
    h = len(partial_sums)
    if h >> doublings < 1:
        raise ValueError(f"partial_sums must hold at least 2**doublings values, got {h}")
    ns = [h >> j for j in range(doublings + 1)]  # h, h/2, ..., h/2^d
    s = np.concatenate([[0.0], np.asarray(partial_sums, dtype=np.float64)])
    mean_terms = np.array(
        [(s[ns[j]] - s[ns[j + 1]]) / (ns[j] - ns[j + 1]) for j in range(doublings)]
    )
    if mean_terms[0] <= 0.0:
        return -math.inf
    y = np.log(np.maximum(mean_terms, np.finfo(np.float64).tiny))
    x = np.log(np.array(ns[:doublings], dtype=np.float64))
    x = x - x.mean()
    return 1.0 + float(np.dot(x, y - y.mean()) / np.dot(x, x))


def _growth(name: str, total: float, exponent: float, unbounded: bool) -> str:
    if math.isinf(exponent):
        growth = "stopped growing"
    else:
        growth = f"its increment per doubling of n scales like n^{exponent:+.2f}"
    verdict = "unbounded" if unbounded else "bounded"
    return f"{name} reaches {total:.6g}, {growth} ({verdict})"


def robbins_monro(
    schedule: Schedule | Callable[[int], float],
    horizon: int = 100_000,
    tolerance: float = 0.1,
    base: float | None = None,
) -> RobbinsMonroReport:
    r"""Whether `schedule` meets the Robbins-Monro conditions over `horizon` steps.

    Args:
        schedule: a schedule (or plain callable ``step -> value``); values must be >= 0.
        horizon: steps to examine, >= 64 (four doublings of at least 4 steps).
        tolerance: a sum counts as unbounded while its growth exponent is > -tolerance, > 0.
        base: the base for a relative schedule (default: its own, or 1.0).

    Returns:
        A `RobbinsMonroReport` with the partial sums of :math:`\eta` and :math:`\eta^2`.

    Example:
        >>> from descentlab.schedules import inverse_time_decay, constant
        >>> robbins_monro(inverse_time_decay(1.0, base=0.5), 10_000).meets
        True
        >>> robbins_monro(constant(0.1), 10_000).eta_sq_sum_converges
        False

    References:
        Robbins & Monro (1951), A stochastic approximation method, Ann. Math. Statist. 22(3).
    """
    if isinstance(schedule, LossRule):
        raise invalid("schedule", "a step -> value schedule, not a loss rule", schedule)
    sched = as_schedule(schedule)
    horizon = check("horizon", horizon, Interval(Integral, 64, None))
    tolerance = check("tolerance", tolerance, POSITIVE)
    eta = np.fromiter((sched.value(t, base) for t in range(horizon)), np.float64, horizon)
    bad = np.flatnonzero(~np.isfinite(eta) | (eta < 0))
    if bad.size:
        t = int(bad[0])
        raise ValueError(
            f"schedule values must be finite and >= 0, got {float(eta[t])!r} at step {t}"
        )
    return RobbinsMonroReport(eta, tolerance)
