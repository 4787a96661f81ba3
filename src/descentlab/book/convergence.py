r"""Check a schedule against the Robbins-Monro conditions over a finite horizon (the
optimization lecture; only the book uses it): how the verdict is read from the partial sums
is in docs/schedules.md.
"""

from __future__ import annotations

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
    """What `robbins_monro` found.

    Attributes:
        horizon: number of steps examined (steps 0 .. horizon-1).
        eta: the schedule's values, shape (horizon,).
        sum_eta: partial sums :math:`S_1(n) = \\sum_{t<n}\\eta_t`, ``sum_eta[n-1]``.
        sum_eta_sq: partial sums of :math:`\\eta_t^2`.
        eta_exponent: growth exponent of ``sum_eta`` per doubling (0 for 1/t, 1 for a constant).
        eta_sq_exponent: the same for ``sum_eta_sq``.
        eta_sum_diverges: the first condition holds over the horizon.
        eta_sq_sum_converges: the second condition holds over the horizon.
        meets: both hold.
        explanation: a one-paragraph account of the verdict.
    """

    horizon: int
    eta: np.ndarray
    sum_eta: np.ndarray
    sum_eta_sq: np.ndarray
    eta_exponent: float
    eta_sq_exponent: float
    eta_sum_diverges: bool
    eta_sq_sum_converges: bool
    meets: bool
    explanation: str


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


def _explain(
    horizon: int,
    sum_eta: np.ndarray,
    sum_eta_sq: np.ndarray,
    exponents: tuple[float, float],
    tolerance: float,
) -> str:
    """The report's sentence: how both sums grow, and the verdict with its reason."""
    diverges, converges = exponents[0] > -tolerance, not (exponents[1] > -tolerance)
    meets = diverges and converges
    if meets:
        why = "the steps can still travel any distance while their total noise variance is finite"
    elif not diverges:
        why = "sum eta stays bounded, so the iterates can stall before reaching the optimum"
    else:
        why = "sum eta^2 grows without bound, so the gradient noise never averages out"
    return (
        f"Over {horizon} steps: "
        + _growth("sum eta", float(sum_eta[-1]), exponents[0], diverges)
        + "; "
        + _growth("sum eta^2", float(sum_eta_sq[-1]), exponents[1], not converges)
        + f". Robbins-Monro conditions {'met' if meets else 'not met'}: {why} "
        f"(a sum counts as unbounded while its exponent > {-tolerance:g})."
    )


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
    sum_eta = np.cumsum(eta)
    sum_eta_sq = np.cumsum(eta * eta)
    a = growth_exponent(sum_eta)
    b = growth_exponent(sum_eta_sq)
    diverges = a > -tolerance
    converges = not (b > -tolerance)

    explanation = _explain(horizon, sum_eta, sum_eta_sq, (a, b), tolerance)
    return RobbinsMonroReport(
        horizon=horizon,
        eta=eta,
        sum_eta=sum_eta,
        sum_eta_sq=sum_eta_sq,
        eta_exponent=a,
        eta_sq_exponent=b,
        eta_sum_diverges=diverges,
        eta_sq_sum_converges=converges,
        meets=diverges and converges,
        explanation=explanation,
    )
