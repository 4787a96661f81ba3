r"""The sequential verdict: seeds are added only where a comparison is still open, and the
family-wise error stays at ``1 - confidence`` across every look and every comparison. Each
comparison asks two one-sided signed-rank questions ("worse than the chosen one?", "better?",
:func:`levels`), spending alpha only at the looks where each can decide; beside each verdict
the size it tests, the pseudo-median of the seeds' differences, with the interval the same
test inverts (the design and its simulations: docs/verdict.md).

Example:
    >>> b = boundaries((5, 10, 20, 40), 0.05)
    >>> [round(x, 2) for x in b]
    [2.73, 2.66, 2.42, 2.15]
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from descentlab.constraints import FRACTION, check
from descentlab.experiments.compare import stats

__all__ = [
    "GAMMA",
    "GROWTH",
    "TEST_SEED_OFFSET",
    "WORSE_SHARE",
    "Looked",
    "SeqTest",
    "boundaries",
    "decides",
    "default_looks",
    "hodges_lehmann",
    "interval",
    "least_seeds",
    "levels",
    "look",
    "rank_z",
    "reach",
    "refit_seed",
    "sided_boundaries",
    "spend",
    "walsh",
]

#: The Hwang-Shih-DeCani spending parameter: 0 spends ``alpha`` in proportion to the seeds
#: looked at (close to Pocock's boundaries), so that a large difference is decided early.
GAMMA = 0.0

#: The share of each comparison's level given to the one-sided question "is it worse than the
#: chosen one?" (the rest to "is it better?"): the recommendation needs only the first, and
#: at 3 optimizers it is then decidable at 6 seeds (``2^-6 <= 0.8 * 0.05 / 2``).
WORSE_SHARE = 0.8

#: ``max_seeds`` by default: this many times the first look's seeds.
GROWTH = 8

#: Test (refit) seeds start here above the comparison's seed: disjoint from the curve runs'
#: seeds (the choice) and the tuning seeds.
TEST_SEED_OFFSET = 10_000


def refit_seed(seed: int, i: int) -> int:
    """The ``i``-th test seed of a comparison whose seed is ``seed``.

    Example:
        >>> refit_seed(0, 0), refit_seed(0, 4)
        (10000, 10004)
    """
    return seed + TEST_SEED_OFFSET + i


def default_looks(seeds: int, max_seeds: int | None = None) -> tuple[int, ...]:
    """The looks for ``seeds`` first seeds: doubling up to ``max_seeds`` (default
    :data:`GROWTH` ``* seeds``, the last look exactly there). ``max_seeds == seeds``: one
    look, no seeds added.

    Example:
        >>> default_looks(5, 40), default_looks(5, 5), default_looks(3, 20)
        ((5, 10, 20, 40), (5,), (3, 6, 12, 20))
    """
    if seeds < 2:
        raise ValueError(f"a sequential verdict needs at least 2 seeds a look, got {seeds}")
    top = GROWTH * seeds if max_seeds is None else max_seeds
    if top < seeds:
        raise ValueError(f"max seeds ({top}) is below the first look's seeds ({seeds})")
    looks = [seeds]
    while looks[-1] < top:
        looks.append(min(2 * looks[-1], top))
    if len(looks) > 1 and looks[-1] - looks[-2] < 2:  # a last stage needs 2 seeds of its own
        looks.pop(-2)
    return tuple(looks)


def spend(t: float, alpha: float, gamma: float = GAMMA) -> float:
    """Hwang-Shih-DeCani's alpha spent by information fraction ``t`` (``gamma = 0``: linear).

    Example:
        >>> spend(0.5, 0.05), round(spend(0.5, 0.05, -4), 4)
        (0.025, 0.006)
    """
    t = min(max(t, 0.0), 1.0)
    if gamma == 0:
        return alpha * t
    return alpha * (1 - math.exp(-gamma * t)) / (1 - math.exp(-gamma))


def reach(looks: Sequence[int]) -> tuple[float, ...]:
    """The largest combined statistic each look can show: a stage of ``k`` seeds gives at
    most ``Phi^-1(1 - 2^-k)`` (:func:`rank_z`, every seed on one side).

    Example:
        >>> [round(float(x), 2) for x in reach((5, 10, 20, 40))]
        [1.86, 2.63, 4.05, 6.23]
    """
    from scipy import special

    most = [-float(special.ndtri(0.5**k)) for k in np.diff((0, *looks))]
    return tuple(_cumulate(most, looks))


@functools.lru_cache(maxsize=512)
def boundaries(
    looks: tuple[int, ...],
    alpha: float,
    gamma: float = GAMMA,
    *,
    sides: int = 2,
    reachable: bool = False,
) -> tuple[float, ...]:
    """Boundaries ``b_k`` for the combined statistic at each look: under the null the chance
    that it crosses (``|C_k| >= b_k`` two-sided, ``C_k >= b_k`` with ``sides=1``) at some look
    is ``alpha``, spent by :func:`spend` over the seeds' fraction; computed by numerical
    integration of the law of the combined statistic (independent normal increments of
    variance ``n_j``, the stage sizes). ``reachable``: a look whose boundary the statistic
    cannot reach (:func:`reach`) spends nothing (``b_k = inf``) and leaves its share to the
    next look that can decide (Jennison and Turnbull: spending is free to skip a look).

    Example:
        >>> [round(x, 3) for x in boundaries((5, 10, 20, 40), 0.025, sides=1)]
        [2.734, 2.664, 2.424, 2.148]
        >>> [round(x, 3) for x in boundaries((5, 10, 20, 40), 0.025, sides=1, reachable=True)]
        [inf, 2.498, 2.409, 2.144]
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if sides not in (1, 2):
        raise ValueError(f"sides must be 1 or 2, got {sides!r}")
    from scipy import special

    sizes = np.diff((0, *looks)).astype(float)
    if np.any(sizes <= 0):
        raise ValueError(f"looks must increase, got {looks}")
    most = reach(looks) if reachable else (math.inf,) * len(looks)
    total = float(looks[-1])
    out: list[float] = []
    # density of S_k = sum of sqrt(n_j) Z_j (variance V_k = looks[k]) on a grid, restricted to
    # the region where no boundary was crossed
    grid = dens = None
    spent = 0.0
    for k, n in enumerate(looks):
        target = spend(n / total, alpha, gamma) - spent
        v = float(n)
        if grid is None:
            b = float(-special.ndtri(target / sides))
            cross = target
        else:
            b, cross = _later_boundary(grid, dens, sizes[k], v, target, sides)
        if most[k] < b:  # it cannot decide here: spend nothing, the next look has it
            b, cross = math.inf, 0.0
        out.append(b)
        spent += cross
        if k == len(looks) - 1:
            break
        grid, dens = _uncrossed_density(grid, dens, b, v, sizes[k], sides)
    return tuple(out)


def _later_boundary(
    grid: np.ndarray, dens: np.ndarray, size: float, v: float, target: float, sides: int
) -> tuple[float, float]:
    """The boundary ``b`` of a look after the first (``v``: its seeds, the variance of S_k)
    whose crossing chance is ``target``, from the density ``dens`` on ``grid`` of the previous
    look's statistic where it did not cross, through an increment of variance ``size``; with
    that chance (``b = inf``, chance 0: nothing left to spend here)."""
    from scipy import optimize, special

    step = math.sqrt(size)
    h = grid[1] - grid[0]
    mass = dens * h

    def crossing(c: float) -> float:
        edge = c * math.sqrt(v)
        up = special.ndtr((grid - edge) / step)  # P(S_k >= edge | S_{k-1} = x)
        down = special.ndtr((-edge - grid) / step) if sides == 2 else 0.0
        return float(np.sum(mass * (up + down)))

    if target <= 0:
        b = math.inf
    elif crossing(0.0) <= target:
        b = 0.0
    else:
        b = float(optimize.brentq(lambda c: crossing(c) - target, 0.0, 40.0, xtol=1e-10))
    cross = crossing(b) if math.isfinite(b) else 0.0
    return b, cross


def _uncrossed_density(
    grid: np.ndarray | None, dens: np.ndarray | None, b: float, v: float, size: float, sides: int
) -> tuple[np.ndarray, np.ndarray]:
    """The new grid and the density on it of S_k (variance ``v``) where it did not cross the
    boundary ``b``: the normal density at the first look (``grid`` None), else the previous
    look's (``dens`` on ``grid``) convolved with the increment's (variance ``size``)."""
    top = min(b, 12.0) * math.sqrt(v)
    new = np.linspace(-top if sides == 2 else -12.0 * math.sqrt(v), top, 801)
    if grid is None:
        dens = np.exp(-0.5 * new * new / v) / math.sqrt(2 * math.pi * v)
    else:
        step = math.sqrt(size)
        h = grid[1] - grid[0]
        kern = np.exp(-0.5 * ((new[:, None] - grid[None, :]) / step) ** 2)
        dens = kern @ (dens * h) / (step * math.sqrt(2 * math.pi))
    return new, dens


def levels(alpha: float, family: int) -> tuple[float, float]:
    """``(worse, better)``: each one-sided question's level for one of ``family`` comparisons
    at family-wise ``alpha``: :data:`WORSE_SHARE` of ``alpha / family`` to "is it worse than
    the chosen one?" (the recommendation's question), the rest to "is it better?"; the two
    sum to Bonferroni's ``alpha / family``.

    Example:
        >>> [round(x, 4) for x in levels(0.05, 2)]
        [0.02, 0.005]
    """
    each = alpha / max(family, 1)
    return WORSE_SHARE * each, (1 - WORSE_SHARE) * each


def sided_boundaries(
    looks: tuple[int, ...], alpha: float, family: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(worse, better)``: the one-sided boundaries of each side at its :func:`levels`,
    spending only at the looks where that side can decide."""
    w, b = levels(alpha, family)
    return (boundaries(tuple(looks), w, sides=1, reachable=True),
            boundaries(tuple(looks), b, sides=1, reachable=True))  # fmt: skip


def _cumulate(z: Sequence[float], looks: Sequence[int]) -> list[float]:
    """Stage z's combined at each look, weighted by the planned stage sizes' square roots."""
    sizes = np.diff((0, *looks[: len(z)])).astype(float)
    return list(np.cumsum(np.sqrt(sizes) * np.asarray(z, dtype=float)) / np.sqrt(np.cumsum(sizes)))


@functools.lru_cache(maxsize=256)
def _signed_rank_sf(n: int, zeros: int = 0) -> np.ndarray:
    """``P(W >= w)`` for ``w = 0 .. n(n+1)/2``: the law of the sum of the ranks ``zeros + 1 ..
    n`` each kept with chance 1/2 (Wilcoxon's signed-rank statistic under the null, with
    Pratt's zeros: they take the smallest ranks and are kept by neither side)."""
    from scipy import special

    w = np.arange(n * (n + 1) // 2 + 1)
    ranks = range(zeros + 1, n + 1)
    if n > 400:  # the normal law, continuity-corrected (within 3e-4 of it there)
        mean, var = sum(ranks) / 2, sum(r * r for r in ranks) / 4
        return special.ndtr((mean - w + 0.5) / math.sqrt(max(var, 1e-12)))
    p = np.zeros(len(w))
    p[0] = 1.0
    for r in ranks:
        p[r:] = 0.5 * (p[r:] + p[:-r])
        p[:r] *= 0.5
    sf = np.minimum(np.cumsum(p[::-1])[::-1], 1.0)  # rounding put sums past 1 (n = 58)
    sf[0] = 1.0  # P(W >= 0), which the sum missed by 3e-15 at n = 120
    return sf


def rank_z(diffs: Sequence[float]) -> tuple[float, float]:
    """``(worse, better)``: a stage's seeds' differences (positive: worse; ``inf`` where only
    the other optimizer failed, ``-inf`` only the chosen one, 0 both) as the exact one-sided
    signed-rank tests' standard normals, ``Phi^-1(1 - p)``. The ranks of ``|d|`` break ties by
    the seeds' order; a 0 takes the smallest ranks and counts on neither side, and the null
    law is over the other ranks alone (Pratt's treatment: behind on 7 of 10 and tied on 3 is
    ``p = 1/128``, as the sign test on the 7 says). Each statistic only grows as one seed's
    difference grows (shrinks), a 0 turning positive included: the verdict is monotone in
    every seed (docs/verdict.md).

    Example:
        >>> [round(z, 2) for z in rank_z([0.1, 0.2, -0.05, 0.3, math.inf, 0.15])]
        [1.86, -2.15]
        >>> round(rank_z([1.0] * 7 + [0.0] * 3)[0], 3)   # Phi^-1(1 - 1/128)
        2.418
    """
    from scipy import special

    d = np.asarray(diffs, dtype=float).tolist()
    if len(d) < 2:
        return 0.0, 0.0
    worse = better = zeros = 0  # each side's rank sum (plain Python: 2.6x numpy's at 5-20 seeds)
    for rank, x in enumerate(sorted(d, key=abs), 1):
        if x > 0:
            worse += rank
        elif x < 0:
            better += rank
        elif x == 0:
            zeros += 1
    worse_z, better_z = (-special.ndtri(_signed_rank_sf(len(d), zeros)[[worse, better]])).tolist()
    return min(max(worse_z, -40.0), 40.0), min(max(better_z, -40.0), 40.0)


def decides(looks: tuple[int, ...], family: int, confidence: float = 0.95) -> bool:
    """Whether ``looks`` can decide any comparison of ``family`` at ``confidence``: some
    look's "worse" boundary (:func:`sided_boundaries`) within reach of the stages' largest
    statistics, ``Phi^-1(1 - 2^-k)`` for a stage of ``k`` seeds (:func:`reach`).

    Example:
        >>> decides((5, 10, 20, 40), 2), decides((5,), 2), decides((6,), 2), decides((5,), 1)
        (True, False, True, True)
    """
    worse, _ = sided_boundaries(tuple(looks), 1 - confidence, family)
    return any(math.isfinite(b) for b in worse)


def least_seeds(
    seeds: int,
    family: int,
    confidence: float = 0.95,
    max_seeds: int | None = None,
    *,
    one_look: bool = False,
) -> int | None:
    """The least ``--max-seeds`` at which a design of ``seeds`` first seeds (the default
    looks up to it) can decide a comparison at all, ``family`` comparisons at ``confidence``
    family-wise: each stage's statistic is at most ``Phi^-1(1 - 2^-k)`` for its ``k`` seeds
    (:func:`rank_z`); None where ``max_seeds`` (when given) is already enough. ``one_look``:
    the least seeds of a single look instead (``--seeds K --max-seeds K``).

    Example:
        >>> least_seeds(5, 4, max_seeds=5), least_seeds(5, 4, max_seeds=10)  # looks 5, 10
        (9, None)
        >>> [least_seeds(2, m, max_seeds=2, one_look=True) for m in (1, 2, 4, 7)]
        [5, 6, 7, 8]
    """

    first = max(seeds, 2)  # (a first look of 1 seed is refused by default_looks)

    def can(top: int) -> bool:
        return decides((top,) if one_look else default_looks(first, top), family, confidence)

    if max_seeds is not None and max_seeds >= first and can(max_seeds):
        return None
    return next(top for top in range(first, 64 * first + 64) if can(top))


def undecidable(looks: Sequence[int], family: int, confidence: float = 0.95) -> list[str]:
    """One line where ``looks`` cannot decide any of ``family`` comparisons (a test that stays
    monotone in every seed cannot go below ``1 / 2^n`` on ``n`` seeds): what would; [] where
    they can."""
    if decides(tuple(looks), family, confidence):
        return []
    top = least_seeds(looks[0], family, confidence, max_seeds=looks[-1])
    one = least_seeds(2, family, confidence, max_seeds=2, one_look=True)
    return [
        f"  With --max-seeds {looks[-1]} no comparison of these {family + 1} optimizers can "
        f"be decided: a test monotone in every seed cannot go below p = 1/2^n on n seeds "
        f"(docs/verdict.md); --max-seeds {top} is the least that can at --seeds "
        f"{looks[0]} (or --seeds {one} --max-seeds {one}, one look)."
    ]


@dataclass(frozen=True)
class SeqTest:
    """One optimizer against the chosen one under the sequential design.

    Attributes:
        test: the paired test over all its seeds (:func:`~descentlab.experiments.compare.
            stats.paired_test`): its ``diff`` (the mean difference on the seeds both
            trained) is described beside the verdict, not tested.
        combined: the combined signed-rank statistic at each look it had (:func:`rank_z`:
            the side, worse or better, that is larger; positive: worse).
        verdict: ``"worse"``, ``"better"``, ``"identical"`` or ``"not distinguishable"``.
        look: the look (1-based) at which it was decided, or its last look.
        seeds: the test seeds it was compared on.
        level: its share of the family-wise level, ``alpha / (M - 1)`` (:func:`levels`
            splits it between the two questions).
        boundary: the "worse" boundary at its last look (inf: that look cannot decide).
        interval: ``(estimate, low, high)``: the pseudo-median of the seeds' differences
            (failures the worst a seed can do) and the repeated interval the test inverts at
            that look (:func:`interval`), simultaneous over the comparisons and the looks;
            an infinite end: the test cannot bound it there.
        why: why it got the seeds it got, in words.
    """

    test: stats.PairedTest
    combined: tuple[float, ...]
    verdict: str
    look: int
    seeds: int
    level: float
    boundary: float
    interval: tuple[float, float, float]
    why: str


@dataclass(frozen=True)
class Looked:
    """The verdicts at the current look and which comparisons are still open.

    Attributes:
        tests: one :class:`SeqTest` per other optimizer, in the order given.
        looks: the design's looks (cumulative test seeds).
        family: the number of comparisons (``M - 1``).
        open: indices of the comparisons that should get the next look's seeds (empty: the
            verdict is final).
        next_seeds: the test seeds the next look needs (0 when none is open).
    """

    tests: list[SeqTest]
    looks: tuple[int, ...]
    family: int
    alpha: float
    open: list[int] = field(default_factory=list)
    next_seeds: int = 0


def walsh(d: np.ndarray) -> np.ndarray:
    """The Walsh averages ``(d_i + d_j) / 2``, ``i <= j``, of ``d`` (a failure's ``inf``
    against the other side's ``-inf``: 0, two seeds where each failed once)."""
    i, j = np.triu_indices(len(d))
    with np.errstate(invalid="ignore"):
        w = (d[i] + d[j]) / 2
    return np.where(np.isnan(w), 0.0, w)


def hodges_lehmann(diffs: Sequence[float]) -> float:
    """The Hodges-Lehmann estimate of the pseudo-median of ``diffs``: the median of their
    Walsh averages (:func:`walsh`), the size the signed-rank test is a test of.

    Example:
        >>> hodges_lehmann([-0.5] * 18 + [4.5] * 2)   # mean 0, behind on 18 of 20
        -0.5
    """
    d = np.asarray(diffs, dtype=float)
    return float(np.median(walsh(d))) if len(d) else math.nan


def interval(
    stages: Sequence[Sequence[float]],
    looks: Sequence[int],
    worse: float,
    better: float,
) -> tuple[float, float, float]:
    """``(estimate, low, high)`` of the pseudo-median of the seeds' differences (positive:
    worse) from ``stages`` (each stage's differences, as :func:`rank_z` takes them), the
    interval the design's own test inverts: the shifts ``delta`` at which the stages'
    differences less ``delta`` cross neither side's boundary at the last of ``stages``
    (``worse`` and ``better``, :func:`sided_boundaries`) -- Jennison and Turnbull's repeated
    interval, valid whenever the design stopped. Each end is a Walsh average of one
    stage's seeds (:func:`walsh`: the signed-rank statistics change only there), found by
    bisection, so it is one of the differences' own midpoints and inside the metric's range;
    an end the test cannot reach at this level (an infinite boundary, too few seeds) is
    infinite: no bound there. The estimate is :func:`hodges_lehmann` over the stages'
    seeds (within the interval).

    Example:
        >>> est, low, high = interval([[0.3, 0.5, 0.2, 0.9, 0.4, 0.6, 0.1, 0.7]], (8,), 2.0, 2.5)
        >>> round(est, 3), low, high   # low: W >= 33 of 36 (the 4th Walsh average); high: W = 36
        (0.45, 0.2, 0.9)
    """
    d = [np.asarray(x, dtype=float) for x in stages]
    if not d:
        return math.nan, -math.inf, math.inf
    est = hodges_lehmann(np.concatenate(d))
    cands = np.unique(np.concatenate([walsh(x) for x in d]))
    cands = cands[np.isfinite(cands)]
    if not len(cands):
        return est, -math.inf, math.inf
    pad = 1.0 + abs(cands[0]) + abs(cands[-1])
    mids = np.concatenate(([cands[0] - pad], (cands[1:] + cands[:-1]) / 2, [cands[-1] + pad]))

    def stat(i: int, side: int) -> float:
        return _cumulate([rank_z(x - mids[i])[side] for x in d], looks)[-1]

    low = -math.inf
    if math.isfinite(worse) and stat(0, 0) >= worse:  # the worse side: falls with the shift
        lo, hi = 0, len(mids)  # the last index at which it crosses, by bisection
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if stat(mid, 0) >= worse else (lo, mid)
        low = float(cands[lo]) if lo < len(cands) else math.inf
    high = math.inf
    if math.isfinite(better) and stat(len(mids) - 1, 1) >= better:  # rises with the shift
        lo, hi = -1, len(mids) - 1  # the first index at which it crosses
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if stat(mid, 1) >= better else (mid, hi)
        high = float(cands[hi - 1]) if hi > 0 else -math.inf
    if low <= high:
        est = min(max(est, low), high)
    return est, low, high


def _stage_diffs(
    best: Mapping[Any, Any],
    other: Mapping[Any, Any],
    order: Sequence[Any],
    looks: tuple[int, ...],
    maximize: bool,
) -> list[list[float]]:
    """Each stage's differences (:func:`_rank_diffs`) while its seeds have run and at least 2
    of them both ran."""
    out: list[list[float]] = []
    for lo, hi in zip((0, *looks), looks, strict=False):
        d = _rank_diffs(best, other, order[lo:hi], maximize)
        if hi > len(order) or len(d) < 2:
            break
        out.append(d)
    return out


def _rank_diffs(
    best: Mapping[Any, Any], other: Mapping[Any, Any], seeds: Sequence[Any], maximize: bool
) -> list[float]:
    """By seed both ran, ``other``'s deficit (positive: worse) as :func:`rank_z` takes it: a
    failed run the worst a seed can do (``best`` and ``other`` as :func:`_means` makes them)."""
    sign, out = (1.0 if maximize else -1.0), []
    for s in (s for s in seeds if s in best and s in other):
        a, b = best[s] is None, other[s] is None
        out.append(0.0 if a and b else math.copysign(math.inf, b - a) if a or b
                   else sign * (best[s] - other[s]))  # fmt: skip
    return out


def _means(values: Mapping[Any, Any]) -> dict[Any, float | None]:
    """By seed, its value's mean; None for a failed run (None or not finite)."""
    finite, mean = stats.finite, stats.seed_mean
    return {s: mean(v) if v is not None and finite(v) else None for s, v in values.items()}


def _why(had: int, looks: tuple[int, ...], final: bool) -> tuple[str, bool]:
    """Why an undecided comparison got the seeds it got, and whether it stays open."""
    if had == 0:
        return "too few seeds for a look", False
    if had >= len(looks):
        return f"open after {looks[-1]} seeds, the most the design adds", False
    if final:
        return f"open after {looks[had - 1]} seeds (no more were run)", False
    return f"open after {looks[had - 1]} seeds", True


def look(
    best: Mapping[Any, Any],
    others: Sequence[Mapping[Any, Any]],
    *,
    maximize: bool,
    looks: tuple[int, ...],
    order: Sequence[Any] | None = None,
    confidence: float = 0.95,
    final: bool = False,
) -> Looked:
    """Each of ``others`` against ``best`` (values by test seed, as
    :func:`~descentlab.experiments.compare.stats.paired_test` takes them; None for a seed
    whose run failed), judged at every look their seeds reach, each at level ``alpha / (M -
    1)`` split between the one-sided "worse" and "better" questions (:func:`levels`,
    :func:`sided_boundaries`) inside the group-sequential design (module docstring); with
    ``final``, each one's :func:`interval` at the look it stopped. ``order``: the test seeds in
    the order they are added (default: sorted). ``final``: no more seeds will come (the open
    ones are reported not distinguishable at the seeds they had).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> best = {s: 0.9 + 0.01 * rng.normal() for s in range(10)}
        >>> worse = {s: 0.5 + 0.01 * rng.normal() for s in range(10)}
        >>> same = {s: 0.9 + 0.01 * rng.normal() for s in range(10)}
        >>> r = look(best, [worse, same], maximize=True, looks=(10, 20))
        >>> [t.verdict for t in r.tests], r.open, r.next_seeds
        (['worse', 'not distinguishable'], [1], 20)
        >>> final = look(best, [worse, same], maximize=True, looks=(10, 20), final=True)
        >>> est, low, high = final.tests[0].interval   # simultaneous over the two
        >>> 0 < low < est < high
        True
    """
    check("confidence", confidence, FRACTION)
    alpha = 1 - confidence
    order = sorted(best) if order is None else list(order)
    m = max(len(others), 1)
    worse_b, better_b = sided_boundaries(looks, alpha, m)
    tests: list[SeqTest] = []
    open_: list[int] = []
    had_all: list[int] = []
    best_means = _means(best)  # (each optimizer's means once a look)
    for i, o in enumerate(others):
        st = _stage_diffs(best_means, _means(o), order, looks, maximize)
        z = [rank_z(d) for d in st]
        up, down = _cumulate([x[0] for x in z], looks), _cumulate([x[1] for x in z], looks)
        c = [u if u >= v else -v for u, v in zip(up, down, strict=True)]
        full = stats.paired_test(best, o, maximize=maximize, confidence=confidence, family=m)
        hit = next(
            (k + 1 for k in range(len(c)) if up[k] >= worse_b[k] or down[k] >= better_b[k]), 0
        )
        had = len(c)
        if full.verdict == "identical":
            verdict, why, at = "identical", "identical on every seed and test example", had
        elif hit:
            verdict = "worse" if up[hit - 1] >= worse_b[hit - 1] else "better"
            why, at = f"decided after {looks[hit - 1]} seeds", hit
        else:
            verdict, at = "not distinguishable", had
            why, still = _why(had, looks, final)
            if still:
                open_.append(i)
        b = worse_b[at - 1] if at else math.nan
        ci = (0.0, 0.0, 0.0) if verdict == "identical" else (math.nan, -math.inf, math.inf)
        if final and verdict != "identical" and at:  # (the looks before need no interval)
            ci = interval(st[:at], looks, worse_b[at - 1], better_b[at - 1])
        tests.append(
            SeqTest(full, tuple(c), verdict, at, sum(s in o for s in order), alpha / m, b, ci, why)
        )  # fmt: skip
        had_all.append(had)
    nxt = 0
    if open_ and not final:
        nxt = looks[min(max(had_all[i] for i in open_), len(looks) - 1)]
    return Looked(tests, looks, len(others), alpha, open_, nxt)
