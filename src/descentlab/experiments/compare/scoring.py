r"""The statistics across problems of a suite: Dolan-More performance profiles, AlgoPerf's
benchmark score, wins and the rank table -- pure functions of numbers (times to target, final
metrics), which :func:`~descentlab.experiments.multi.compare_many` computes from its
comparisons and the multi-problem report reads (without the runner that made them).

References:
    Dolan & More, "Benchmarking optimization software with performance profiles",
    Mathematical Programming 91, 2002.
    Dahl et al., "Benchmarking neural network training algorithms" (AlgoPerf), 2023,
    https://arxiv.org/abs/2306.07179.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata

__all__ = ["SCORE_MAX_RATIO", "benchmark_score", "performance_profile", "rank_table", "wins"]


def performance_profile(
    times: np.ndarray, taus: np.ndarray | Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    r"""Dolan-Moré performance profiles.

    Args:
        times: ``(problems, optimizers)`` times to target; ``inf`` where not reached.
        taus: factors ``tau >= 1`` at which to evaluate the profiles.

    Returns:
        ``(ratios, rho)``: the performance ratios ``r[p, s] = t[p, s] / min_s t[p, s]``
        (``inf`` where not reached or no optimizer reached the target on ``p``) and
        ``rho[s, k]``, the fraction of problems with ``r[p, s] <= taus[k]``.

    Example:
        >>> t = np.array([[10.0, 20.0], [30.0, np.inf]])
        >>> r, rho = performance_profile(t, [1, 2])
        >>> r.tolist(), rho.tolist()
        ([[1.0, 2.0], [1.0, inf]], [[1.0, 1.0], [0.0, 0.5]])
    """
    t = np.asarray(times, dtype=float)
    if t.ndim != 2:
        raise ValueError(f"times must be (problems, optimizers), got shape {t.shape}")
    if np.any(t <= 0) or np.any(np.isnan(t)):
        raise ValueError("times must be > 0 (inf where not reached), without NaN")
    taus = np.asarray(taus, dtype=float)
    best = t.min(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        ratios = np.where(np.isfinite(best), t / best, np.inf)
    rho = (ratios[:, :, None] <= taus[None, None, :]).mean(axis=0)
    return ratios, rho


#: AlgoPerf's largest performance ratio: reaching the target more than 4x later than the
#: fastest counts as not reaching it (Dahl et al. 2023, section 4.5).
SCORE_MAX_RATIO = 4.0


def benchmark_score(times: np.ndarray, r_max: float = SCORE_MAX_RATIO) -> np.ndarray:
    r"""AlgoPerf's benchmark score per optimizer: the integrated performance profile,

    .. math::
        B_s = \frac{1}{r_\max - 1} \int_1^{r_\max} \rho_s(\tau)\, d\tau
            = \frac{1}{n_\text{problems}} \sum_p
              \frac{\max(0,\ r_\max - r_{p,s})}{r_\max - 1},

    in [0, 1]: 1 for an optimizer that is fastest on every problem, 0 for one that never
    reaches a target within ``r_max`` times the fastest's time.

    Example:
        >>> benchmark_score(np.array([[10.0, 20.0], [30.0, np.inf]])).round(4).tolist()
        [1.0, 0.3333]
    """
    ratios, _ = performance_profile(times, [1.0])
    if not r_max > 1:
        raise ValueError(f"r_max must be > 1, got {r_max!r}")
    with np.errstate(invalid="ignore"):
        part = np.where(np.isfinite(ratios), np.clip(r_max - ratios, 0.0, None), 0.0)
    return part.mean(axis=0) / (r_max - 1.0)


def wins(times: np.ndarray) -> np.ndarray:
    """The fraction of problems on which each optimizer reached the target first, ties split
    (two optimizers equally fastest on a problem get half of it each): never more than 100%
    together.

    Example:
        >>> wins(np.array([[10.0, 10.0], [30.0, np.inf], [np.inf, np.inf]])).tolist()
        [0.5, 0.16666666666666666]
    """
    t = np.asarray(times, dtype=float)
    best = t.min(axis=1, keepdims=True)
    first = (t == best) & np.isfinite(best)
    share = first / np.maximum(first.sum(axis=1, keepdims=True), 1)
    return share.mean(axis=0)


def rank_table(scores: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """Ranks of optimizers on each problem (1 = best; ties share the mean rank; NaN scores,
    no result, rank last together).

    Args:
        scores: ``(problems, optimizers)`` final metric values (NaN: no result).
        maximize: per problem, whether larger is better.

    Example:
        >>> rank_table(np.array([[0.9, 0.8, 0.9], [1.0, np.nan, 3.0]]), [True, False]).tolist()
        [[1.5, 3.0, 1.5], [1.0, 3.0, 2.0]]
    """
    s = np.asarray(scores, dtype=float)
    out = np.empty_like(s)
    for i, row in enumerate(s):
        key = -row if maximize[i] else row.copy()
        key = np.where(np.isnan(key), np.inf, key)
        out[i] = rankdata(key, method="average")
    return out
